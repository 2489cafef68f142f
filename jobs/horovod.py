"""`horovod`: an MLP on a Parquet dataset, trained with Horovod on Ray Train's workers.

Horovod is opt-in: it is unmaintained since 2023, compiles against the installed torch at
`pip install`, and 0.28.1 needs its CMake raised to C++17 to build against torch 2.x. Ray
Train V2 has no HorovodTrainer, so this template runs Train's V1 trainer
(`RAY_TRAIN_V2_ENABLED=0`). Where Horovod cannot be imported the job stops before it starts
any worker, saying what to install. The network, data and model files are `deepspeed`'s.
"""

from __future__ import annotations

import os
from typing import Any

from fabric import runtime
from jobs import _ray, _train
from jobs._network import (
    MODEL_FILE,
    Network,
    batches,
    evaluate,
    loss_function,
    mlp,
    save_torchscript,
    shard_tensors,
    standardise,
)

NAME = "horovod"
V2_VARIABLE = "RAY_TRAIN_V2_ENABLED"
INSTALL = (
    "HOROVOD_WITH_PYTORCH=1 HOROVOD_WITH_GLOO=1 pip install --no-build-isolation "
    "'horovod[pytorch]==0.28.1'"
)


class Params(Network):
    """The network's parameters, as the `deepspeed` and `tensorflow` templates take them."""


def _require_horovod() -> None:
    """Stop with what to do where Horovod is missing or Ray Train V2 was asked for."""
    try:
        # Installed where the job runs, not here (see INSTALL): nothing for pyright to read.
        import horovod.torch  # noqa: F401  # pyright: ignore[reportMissingImports]
    except ImportError as exc:
        raise SystemExit(
            f"{NAME}: Horovod cannot be imported here ({exc}). Install it with PyTorch and "
            f"Gloo support where the job runs (the cluster's image or the job's runtime_env), "
            f"e.g. `{INSTALL}`; it compiles against the installed torch, and with torch 2.x "
            "its CMake needs C++17. Ray Train V2 has no HorovodTrainer: the job runs Train's "
            f"V1 trainer, with {V2_VARIABLE}=0."
        ) from None
    if os.environ.get(V2_VARIABLE, "0") != "0":
        raise SystemExit(
            f"{NAME}: {V2_VARIABLE}={os.environ[V2_VARIABLE]} asks for Ray Train V2, which has "
            f"no HorovodTrainer; leave it unset or set {V2_VARIABLE}=0"
        )
    # Read when `ray.train` is first imported: before any of Ray Train is.
    os.environ[V2_VARIABLE] = "0"


def train_loop(config: dict[str, Any]) -> None:
    """On each worker: Horovod averages the gradients at each step; rank 0 saves the
    TorchScript and writes the job's metrics (V1 has no controller callback for that)."""
    import horovod.torch as hvd  # pyright: ignore[reportMissingImports]  (as above)
    import ray.train
    import torch

    hvd.init()
    gpu = torch.cuda.is_available()
    device = torch.device("cuda", hvd.local_rank()) if gpu else torch.device("cpu")
    torch.manual_seed(config["seed"])
    model = mlp(config).to(device)
    trainable = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    optimizer = hvd.DistributedOptimizer(
        torch.optim.Adam([p for _, p in trainable], lr=config["learning_rate"]),
        named_parameters=trainable,
    )
    hvd.broadcast_parameters(model.state_dict(), root_rank=0)
    hvd.broadcast_optimizer_state(optimizer, root_rank=0)
    inputs, target = shard_tensors(config)
    loss_of = loss_function(config)
    generator = torch.Generator().manual_seed(config["seed"] + hvd.rank())
    for epoch in range(1, config["epochs"] + 1):
        total, steps = torch.zeros((), device=device), 0
        for batch, truth in batches(inputs, target, config["batch_size"], generator):
            optimizer.zero_grad()
            loss = loss_of(model(batch.to(device)), truth.to(device))
            loss.backward()
            optimizer.step()
            total += loss.detach()
            steps += 1
        mean = float(hvd.allreduce(total.cpu() / max(steps, 1), name="epoch_loss"))
        ray.train.report({"epoch": epoch, "loss": mean})
        if hvd.rank() == 0:
            runtime.report_metrics(step=epoch, loss=mean)
    if hvd.rank() == 0:
        save_torchscript(config, model.cpu().state_dict(), config["model_path"])


def run(params: Params) -> dict[str, Any]:
    _require_horovod()
    # Train V1's RunConfig, which HorovodTrainer takes: ray.train's is V1's too once
    # _require_horovod has turned V2 off, but a type checker reads V2's there.
    from ray.air.config import RunConfig
    from ray.train.horovod import HorovodTrainer

    data = _train.load_tabular(NAME, params)
    path = runtime.run_dir() / MODEL_FILE
    config = {**standardise(NAME, params, data), "model_path": str(path)}
    _ray.connect()
    HorovodTrainer(
        train_loop,
        train_loop_config=config,
        scaling_config=_train.scaling(NAME),
        run_config=RunConfig(name=_train.run_name(NAME), storage_path=str(_train.train_folder())),
        datasets={"train": data.datasets()["train"]},
    ).fit()
    scores = evaluate(params, data, str(path), config["classes"])
    runtime.report_metrics(step=params.epochs, **scores)
    return _train.tabular_outputs(data, str(path), "torchscript", scores, config["classes"])


TEMPLATE = runtime.Template(
    name=NAME,
    group=_train.GROUP,
    description=(
        "Train a multilayer perceptron (PyTorch) on a Parquet dataset's numeric columns with "
        "Horovod on Ray Train workers, evaluate it on a held-out validation split, and save "
        "it as TorchScript (model.pt). Needs Horovod installed where the job runs."
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
