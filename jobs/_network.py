"""What the network templates (`deepspeed`, `tensorflow`, `horovod`) share: their parameters,
the data a network needs beyond its rows, the MLP (the `pytorch` template's), sharded
batches, the TorchScript save, the validation scores and the outputs.

Private (the registry skips modules starting with `_`) and light at import, as a template is.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Annotated, Any

from pydantic import Field

from fabric.runtime.model_files import FEATURES_KEY
from jobs import _tabular, _train

MODEL_FILE = "model.pt"


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
    return _tabular.scores(params.task, data.validation[params.target], predicted)
