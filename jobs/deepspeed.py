"""`deepspeed`: an MLP on a Parquet dataset, trained with DeepSpeed ZeRO on Ray Train's workers.

Ray's TorchTrainer starts the workers and their process group (gloo on CPU, NCCL on GPUs);
DeepSpeed wraps the model and a plain `torch.optim.Adam` in its ZeRO optimizer (stage 1
partitions the optimizer state across workers, stage 2 the gradients too). A torch optimizer
needs no compiled op; DeepSpeed still compiles its shared-memory collective on first use on
CPU, so the build is cached in the user's folder (or `TORCH_EXTENSIONS_DIR` where set).

The network and its data (`jobs/_network.py`) are shared with `tensorflow` and `horovod`.
"""

from __future__ import annotations

import os
from typing import Any, cast

from pydantic import Field

from fabric import runtime
from jobs import _network, _ray, _train

NAME = "deepspeed"
# DeepSpeed's compiled ops (and torch's extensions) are kept here, inside the user's folder,
# so that a user's later jobs load them instead of compiling them again.
EXTENSIONS_FOLDER = ".cache/torch_extensions"


class Params(_network.Network):
    zero_stage: int = Field(
        default=2,
        ge=1,
        le=2,
        description=(
            "ZeRO stage: 1 partitions the optimizer state across workers, 2 the gradients too"
        ),
    )


def extensions_folder() -> str:
    """Where torch keeps compiled extensions: `TORCH_EXTENSIONS_DIR` where set, otherwise a
    folder in the user's storage, which outlives the job (and a KubeRay pod's home)."""
    return os.environ.get("TORCH_EXTENSIONS_DIR") or str(runtime.user_dir() / EXTENSIONS_FOLDER)


def train_loop(config: dict[str, Any]) -> None:
    """On each worker: DeepSpeed's engine around the MLP and Adam, ZeRO partitioning the
    optimizer state (and gradients at stage 2); rank 0 saves the TorchScript at the end."""
    os.environ["TORCH_EXTENSIONS_DIR"] = config["extensions"]
    import deepspeed
    import ray.train
    import torch

    rank = ray.train.get_context().get_world_rank()
    torch.manual_seed(config["seed"])
    model = _network.mlp(config)
    trainable = [p for p in model.parameters() if p.requires_grad]
    engine, _, _, _ = deepspeed.initialize(
        model=model,
        optimizer=torch.optim.Adam(trainable, lr=config["learning_rate"]),
        config={
            "train_micro_batch_size_per_gpu": config["batch_size"],
            "gradient_accumulation_steps": 1,
            "zero_optimization": {"stage": config["zero_stage"]},
            "steps_per_print": 2**31 - 1,
        },
    )
    inputs, target = _network.shard_tensors(config)
    loss_of = _network.loss_function(config)
    generator = torch.Generator().manual_seed(config["seed"] + rank)
    for epoch in range(1, config["epochs"] + 1):
        total, steps = torch.zeros((), device=engine.device), 0
        for batch, truth in _network.batches(inputs, target, config["batch_size"], generator):
            loss = loss_of(engine(batch.to(engine.device)), truth.to(engine.device))
            engine.backward(loss)
            engine.step()
            total += loss.detach()
            steps += 1
        # Every worker's mean loss, averaged: the loss over all the epoch's rows.
        mean = total / max(steps, 1)
        torch.distributed.all_reduce(mean)
        world = torch.distributed.get_world_size()
        ray.train.report({"epoch": epoch, "loss": float(mean) / world, "workers": world})
    if rank == 0:
        # The model given to initialize: DeepSpeed sets it in the instance's __dict__, so its
        # type reads as nn.Module.__getattr__'s (Tensor | Module).
        module = cast(torch.nn.Module, engine.module)
        _network.save_torchscript(config, module.state_dict(), config["model_path"])


def run(params: Params) -> dict[str, Any]:
    from ray.train.torch import TorchTrainer

    data = _train.load_tabular(NAME, params)
    config = _network.standardise(NAME, params, data)
    path = runtime.run_dir() / _network.MODEL_FILE
    config.update(zero_stage=params.zero_stage, model_path=str(path))
    config["extensions"] = extensions_folder()
    print(
        f"{NAME}: ZeRO stage {params.zero_stage}, torch.optim.Adam (no optimizer offload); "
        f"compiled ops cached in {config['extensions']}",
        flush=True,
    )
    _ray.connect()
    TorchTrainer(
        train_loop,
        train_loop_config=config,
        scaling_config=_train.scaling(NAME),
        run_config=_train.run_config(NAME),
        datasets={"train": data.datasets()["train"]},
    ).fit()
    scores = _network.evaluate(params, data, str(path), config["classes"])
    runtime.report_metrics(step=params.epochs, **scores)
    return _train.tabular_outputs(data, str(path), "torchscript", scores, config["classes"])


TEMPLATE = runtime.Template(
    name=NAME,
    group=_train.GROUP,
    description=(
        "Train a multilayer perceptron (PyTorch) on a Parquet dataset's numeric columns with "
        "DeepSpeed ZeRO stage 1 or 2 on Ray Train workers, evaluate it on a held-out "
        "validation split, and save it as TorchScript (model.pt)."
    ),
    params=Params,
    run=run,
    resources=_train.DRIVER_RESOURCES,
    outputs={
        **_train.TABULAR_OUTPUTS,
        "model_uri": "the trained network as TorchScript (model.pt), its features inside",
        "classes": "the class of each output column (classification)",
    },
    workers=2,
    worker_resources={"cpu": 1.0},
)

if __name__ == "__main__":
    TEMPLATE.main()
