"""An llm endpoint's application: Ray Serve's LLM library around vLLM, one base model and
the project's LoRA adapters of it.

The Fabric server writes the application (`fabric.services.serving.serve_config`) with this
module's `app_builder` and `args` as `fabric.runtime.serve_contract.LlmArgs`; Serve runs the
builder, and the replicas, in the LLM environment (the application's `py_executable`), which
has vLLM; the controller and proxy stay in the head's. `ray.serve.llm.build_openai_app` brings
OpenAI's routes (`/v1/models`, `/v1/chat/completions`, `/v1/completions`, `/v1/embeddings`),
streaming and OpenAI-shaped errors; the Fabric server's door stands in front of it for keys,
rate limits, metering and metrics.

Adapters: a call that names `BASE:ADAPTER` is routed by Serve's model multiplexing to a
replica that has the adapter loaded, or loads it there (at most `max_loras` per replica, the
least recently used dropped). Ray's own loader fetches adapters from cloud storage only; this
one reads them from the project's registry, where `model-register` put them, so a newly
registered adapter is served at once, with no change to the application (which would restart
the engine).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import HTTPException
from ray.llm._internal.common.models import global_id_manager
from ray.llm._internal.serve.core.configs.accelerators import CPUConfig, GPUConfig
from ray.llm._internal.serve.core.configs.llm_config import DiskMultiplexConfig
from ray.llm._internal.serve.utils.lora_serve_utils import LoraModelLoader
from ray.serve import Application
from ray.serve.llm import LLMConfig, LLMServer, build_openai_app

from fabric.runtime import model_store
from fabric.runtime.model_files import ModelError
from fabric.runtime.serve_contract import LlmArgs

# Ray groups stream chunks every 50 ms by default, which hides the engine's inter-token
# latency from clients and from the door's metrics: send each chunk as it comes.
EXPERIMENTAL = {"stream_batching_interval_ms": 0}
# Where the loader finds what it needs in the LLMConfig it is handed.
REGISTRY = "fabric_registry"


class RegistryAdapters(LoraModelLoader):
    """Adapters from the project's registry: `BASE:NAME` (or `NAME@VERSION`, `NAME@ALIAS`)
    is the lora version of that name registered for the endpoint's base."""

    async def load_model_from_config(
        self, lora_model_id: str, llm_config: LLMConfig
    ) -> DiskMultiplexConfig:
        if lora_model_id in self.disk_cache:
            return self.disk_cache[lora_model_id]
        where = llm_config.experimental_configs[REGISTRY]
        reference = lora_model_id.partition(":")[2]
        try:
            folder = model_store.adapter_for(Path(where["registry"]), reference, where["base"])
        except ModelError as exc:
            raise HTTPException(404, f"model {lora_model_id!r}: {exc}") from None
        loaded = DiskMultiplexConfig(
            model_id=lora_model_id,
            max_total_tokens=None,
            local_path=str(folder),
            lora_assigned_int_id=global_id_manager.next(),
        )
        self.disk_cache[lora_model_id] = loaded
        return loaded


class RegistryLLMServer(LLMServer):
    """Ray's LLM server, loading adapters with `RegistryAdapters`."""

    def _init_multiplex_loader(self, model_downloader_cls: Any = None) -> None:
        super()._init_multiplex_loader(RegistryAdapters)


def llm_config(args: LlmArgs) -> LLMConfig:
    on_gpu = args.bundle.get("GPU", 0) > 0
    engine: dict[str, Any] = dict(args.engine)
    if not on_gpu:
        # Compiling the model's graph takes minutes on a few cores and gains little there.
        engine.setdefault("enforce_eager", True)
    engine["enable_lora"] = True
    return LLMConfig(
        model_loading_config={"model_id": args.model, "model_source": args.uri},
        accelerator_config=GPUConfig() if on_gpu else CPUConfig(),
        engine_kwargs=engine,
        deployment_config=args.deployment,
        placement_group_config={"bundle_per_worker": args.bundle, "strategy": "PACK"},
        lora_config={"max_num_adapters_per_replica": engine["max_loras"]},
        server_cls=RegistryLLMServer,
        experimental_configs={
            **EXPERIMENTAL,
            REGISTRY: {"registry": args.registry, "base": args.base},
        },
    )


def app_builder(args: dict[str, Any]) -> Application:
    """Serve's application builder: `args` as the server wrote them (LlmArgs)."""
    llm = LlmArgs.model_validate(args)
    return build_openai_app(
        {
            "llm_configs": [llm_config(llm)],
            # The ingress only parses and forwards: the quota counts the engine's replicas.
            "ingress_deployment_config": {"ray_actor_options": {"num_cpus": 0}},
        }
    )
