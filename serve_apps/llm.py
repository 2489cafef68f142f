"""An llm endpoint's application: Ray Serve's LLM library around vLLM, one base model.

The Fabric server writes the application (`fabric.services.serving.serve_config`) with this
module's `app_builder` and `args` as `fabric.runtime.serve_contract.LlmArgs`; Serve runs the
builder, and the replicas, in the LLM environment (the application's `py_executable`), which
has vLLM; the controller and proxy stay in the head's. `ray.serve.llm.build_openai_app` brings
OpenAI's routes (`/v1/models`, `/v1/chat/completions`, `/v1/completions`, `/v1/embeddings`),
streaming and OpenAI-shaped errors; the Fabric server's door stands in front of it for keys,
rate limits, metering and metrics.
"""

from __future__ import annotations

from typing import Any

from ray.serve import Application
from ray.serve.llm import LLMConfig, build_openai_app

from fabric.runtime.serve_contract import LlmArgs

# Ray groups stream chunks every 50 ms by default, which hides the engine's inter-token
# latency from clients and from the door's metrics: send each chunk as it comes.
EXPERIMENTAL = {"stream_batching_interval_ms": 0}


def llm_config(args: LlmArgs) -> LLMConfig:
    on_gpu = args.bundle.get("GPU", 0) > 0
    engine: dict[str, Any] = dict(args.engine)
    if not on_gpu:
        # Compiling the model's graph takes minutes on a few cores and gains little there.
        engine.setdefault("enforce_eager", True)
    return LLMConfig(
        model_loading_config={"model_id": args.model, "model_source": args.uri},
        accelerator_config={"kind": "gpu" if on_gpu else "cpu"},
        engine_kwargs=engine,
        deployment_config=args.deployment,
        placement_group_config={"bundle_per_worker": args.bundle, "strategy": "PACK"},
        experimental_configs=EXPERIMENTAL,
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
