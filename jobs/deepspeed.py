"""`deepspeed`: an MLP on a Parquet dataset, trained with DeepSpeed ZeRO on Ray Train's workers.

Ray's TorchTrainer starts the workers and their process group (gloo on CPU, NCCL on GPUs);
DeepSpeed wraps the model and a plain `torch.optim.Adam` in its ZeRO optimizer (stage 1
partitions the optimizer state across workers, stage 2 the gradients too). A torch optimizer
needs no compiled op; DeepSpeed still compiles its shared-memory collective on first use on
CPU, so the build is cached in the user's folder (or `TORCH_EXTENSIONS_DIR` where set).

The network (`Network`, `mlp`, `standardise`, ...) is shared with `tensorflow` and `horovod`;
the MLP itself is the `pytorch` template's.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Annotated, Any

from pydantic import Field

from fabric import runtime
from jobs import _train
from jobs._models import FEATURES_KEY

NAME = "deepspeed"
MODEL_FILE = "model.pt"
# DeepSpeed's compiled ops (and torch's extensions) are kept here, inside the user's folder,
# so that a user's later jobs load them instead of compiling them again.
EXTENSIONS_FOLDER = ".cache/torch_extensions"


class Network(_train.Tabular):
    """Parameters of a multilayer perceptron trained on a Parquet dataset's numeric columns."""

    hidden_sizes: list[Annotated[int, Field(ge=1, le=65536)]] = Field(
        default=[32, 16],
        min_length=1,
        max_length=16,
        description="the width of each hidden layer, first to last, e.g. [64, 32]",
    )
    epochs: int = Field(default=20, ge=1, le=10000, description="passes over the training rows")
    batch_size: int = Field(default=32, ge=1, le=65536, description="rows per step on each worker")
    learning_rate: float = Field(default=0.01, gt=0, le=10, description="Adam's step size")


class Params(Network):
    zero_stage: int = Field(
        default=2,
        ge=1,
        le=2,
        description=(
            "ZeRO stage: 1 partitions the optimizer state across workers, 2 the gradients too"
        ),
    )


def standardise(name: str, params: Network, data: _train.TabularData) -> dict[str, Any]:
    """What a network needs of the data beyond its rows: the classes in order, and the
    training rows' means and spreads, baked into the model so that it reads raw columns and
    answers in the target's own units."""
    import numpy as np

    classes = _train.classes(params, data)
    if params.task == "classification" and len(classes) < 2:
        raise SystemExit(
            f"{name}: the training rows hold one class of {params.target} only; "
            "a classifier needs two or more"
        )
    inputs = data.train[data.features].to_numpy(dtype=np.float64)
    target = data.train[params.target].to_numpy(dtype=np.float64)
    std = inputs.std(axis=0)
    return {
        "features": data.features,
        "target": params.target,
        "classes": classes,
        "hidden_sizes": params.hidden_sizes,
        "epochs": params.epochs,
        "batch_size": params.batch_size,
        "learning_rate": params.learning_rate,
        "seed": params.seed,
        "mean": inputs.mean(axis=0).tolist(),
        # A constant column has no spread: dividing by 1 leaves it as it is.
        "std": np.where(std > 0, std, 1.0).tolist(),
        "target_mean": 0.0 if classes else float(target.mean()),
        "target_scale": 1.0 if classes else float(target.std() or 1.0),
    }


def mlp(config: dict[str, Any]) -> Any:
    """The `pytorch` template's MLP; for a regression, followed by a fixed layer that scales
    its output to the target's units, so that it starts near the target's mean."""
    import torch
    from torch import nn

    from jobs.pytorch import build_mlp

    classes, features = config["classes"], config["features"]
    body = build_mlp(
        len(features), config["hidden_sizes"], len(classes) or 1, config["mean"], config["std"]
    )
    if classes:
        return body
    scale = nn.Linear(1, 1)
    with torch.no_grad():
        scale.weight.fill_(config["target_scale"])
        scale.bias.fill_(config["target_mean"])
    return nn.Sequential(body, scale.requires_grad_(False))


def loss_function(config: dict[str, Any]) -> Any:
    """The mean loss of a batch: cross-entropy over the classes, or the squared error in
    units of the target's variance (so that it reads the same at any scale)."""
    import torch

    if config["classes"]:
        return torch.nn.CrossEntropyLoss()
    variance = config["target_scale"] ** 2

    def squared(predicted: Any, truth: Any) -> Any:
        return torch.nn.functional.mse_loss(predicted, truth) / variance

    return squared


def shard_tensors(config: dict[str, Any]) -> tuple[Any, Any]:
    """This worker's training rows as (inputs, targets) tensors, classes as their index."""
    import numpy as np
    import torch

    frame = _train.shard("train")
    inputs = torch.tensor(frame[config["features"]].to_numpy(dtype=np.float32))
    if config["classes"]:
        index = _train.label_index(frame[config["target"]], config["classes"])
        return inputs, torch.tensor(index.to_numpy(dtype=np.int64))
    target = frame[config["target"]].to_numpy(dtype=np.float32).reshape(-1, 1)
    return inputs, torch.tensor(target)


def batches(inputs: Any, target: Any, size: int, generator: Any) -> Iterator[tuple[Any, Any]]:
    """One epoch of shuffled batches. Train splits the rows evenly, so every worker takes as
    many steps: each step is a collective all workers must join."""
    import torch

    order = torch.randperm(len(inputs), generator=generator)
    for start in range(0, len(order), size):
        rows = order[start : start + size]
        yield inputs[rows], target[rows]


def save_torchscript(config: dict[str, Any], weights: dict[str, Any], path: str) -> None:
    """The trained network as TorchScript, with its input columns stored beside it.

    Scripted from a fresh copy: the trained module carries its trainer's hooks (DeepSpeed's),
    which TorchScript cannot compile.
    """
    import torch

    model = mlp(config)
    model.load_state_dict(weights)
    scripted = torch.jit.script(model.eval())
    scripted.save(path, _extra_files={FEATURES_KEY: json.dumps(config["features"])})


def evaluate(
    params: Network, data: _train.TabularData, path: str, classes: list[Any]
) -> dict[str, float]:
    """Scores of the saved TorchScript on the validation rows: what a user would load."""
    import numpy as np
    import torch

    model = torch.jit.load(path)
    with torch.no_grad():
        inputs = torch.tensor(data.validation[data.features].to_numpy(dtype=np.float32))
        output = model(inputs).numpy()
    predicted = np.asarray(classes)[output.argmax(axis=1)] if classes else output.reshape(-1)
    return _train.scores(params.task, data.validation[params.target], predicted)


def network_outputs(
    data: _train.TabularData, uri: str, framework: str, scores: dict[str, float], classes: list
) -> dict[str, Any]:
    """A network template's outputs, named as the other Ray Train templates name theirs."""
    outputs: dict[str, Any] = {
        "model_uri": uri,
        "framework": framework,
        "metrics": scores,
        "features": data.features,
        "train_rows": len(data.train),
        "validation_rows": len(data.validation),
    }
    if classes:
        outputs["classes"] = classes
    return outputs


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
    model = mlp(config)
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
    inputs, target = shard_tensors(config)
    loss_of = loss_function(config)
    generator = torch.Generator().manual_seed(config["seed"] + rank)
    for epoch in range(1, config["epochs"] + 1):
        total, steps = torch.zeros((), device=engine.device), 0
        for batch, truth in batches(inputs, target, config["batch_size"], generator):
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
        save_torchscript(config, engine.module.state_dict(), config["model_path"])


def run(params: Params) -> dict[str, Any]:
    from ray.train.torch import TorchTrainer

    data = _train.load_tabular(NAME, params)
    config = standardise(NAME, params, data)
    path = runtime.run_dir() / MODEL_FILE
    config.update(zero_stage=params.zero_stage, model_path=str(path))
    config["extensions"] = extensions_folder()
    print(
        f"{NAME}: ZeRO stage {params.zero_stage}, torch.optim.Adam (no optimizer offload); "
        f"compiled ops cached in {config['extensions']}",
        flush=True,
    )
    _train.connect()
    TorchTrainer(
        train_loop,
        train_loop_config=config,
        scaling_config=_train.scaling(NAME),
        run_config=_train.run_config(NAME),
        datasets={"train": data.datasets()["train"]},
    ).fit()
    scores = evaluate(params, data, str(path), config["classes"])
    runtime.report_metrics(step=params.epochs, **scores)
    return network_outputs(data, str(path), "torchscript", scores, config["classes"])


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
