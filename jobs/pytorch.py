"""`pytorch`: PyTorch with DDP on Ray Train's workers: the user's training function, or a
built-in MLP on a Parquet dataset's numeric columns; a checkpoint each epoch, and resume."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

from pydantic import Field, model_validator

from fabric import runtime
from jobs import _tabular, _train

NAME = "pytorch"
MODEL_FILE = "model.pt"
# In each checkpoint: the weights, the optimizer and the epochs done so far.
STATE_FILE = "state.pt"


class Params(_train.Tabular):
    dataset: str | None = Field(  # type: ignore[assignment]
        default=None,
        description="a Parquet file for the built-in MLP (or handed to the user's function "
        "as shards train and validation)",
    )
    target: str | None = Field(  # type: ignore[assignment]
        default=None, description="the column the built-in MLP predicts"
    )
    train_module: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$",
        description="the user's module (in the job's working dir) holding the training "
        "function, e.g. pkg.train; the built-in MLP if not given",
    )
    train_function: str = Field(
        default="train_loop",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="the function each worker runs, taking the config dict",
    )
    config: dict[str, Any] = Field(
        default_factory=dict, description="passed to the user's training function"
    )
    hidden_sizes: list[int] = Field(
        default=[64, 64], description="the built-in MLP's hidden layer widths"
    )
    epochs: int = Field(
        default=10, ge=1, le=100000, description="epochs in all, counting those resumed from"
    )
    batch_size: int = Field(default=32, ge=1, le=1_000_000, description="rows per step per worker")
    learning_rate: float = Field(default=1e-3, gt=0, le=10, description="Adam's learning rate")
    resume_from: str | None = Field(
        default=None,
        description="a checkpoint folder, or an earlier run's folder whose latest checkpoint "
        "to continue from; a retried job continues from its own latest by itself",
    )

    @model_validator(mode="after")
    def _a_model_to_train(self) -> Params:
        if self.train_module is None and (self.dataset is None or self.target is None):
            raise ValueError("give dataset and target for the built-in MLP, or train_module")
        if any(size < 1 for size in self.hidden_sizes):
            raise ValueError("hidden_sizes must be positive")
        return self


def build_mlp(inputs: int, hidden: list[int], outputs: int, mean: Any, std: Any) -> Any:
    """An MLP taking raw features: it standardises them with the training split's numbers,
    so the TorchScript needs nothing else to predict."""
    import torch
    from torch import nn

    class MLP(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            # Buffers, read through nn.Module's __getattr__: declared here for the type
            # checker (not in the class body, where TorchScript would read the annotations).
            self.mean: torch.Tensor
            self.std: torch.Tensor
            self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32))
            self.register_buffer("std", torch.tensor(std, dtype=torch.float32))
            layers: list[nn.Module] = []
            width = inputs
            for size in hidden:
                layers += [nn.Linear(width, size), nn.ReLU()]
                width = size
            layers.append(nn.Linear(width, outputs))
            self.layers = nn.Sequential(*layers)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.layers((x - self.mean) / self.std)

    return MLP()


def train_loop(config: dict[str, Any]) -> None:
    """On each worker: the built-in MLP with DDP on its shard; rank 0 checkpoints each epoch."""
    import tempfile

    import ray.train
    import ray.train.torch
    import torch
    from torch import nn

    from jobs._train import label_index, shard

    features, target, classes = config["features"], config["target"], config["classes"]
    torch.manual_seed(config["seed"])

    def tensors(split: str) -> tuple[torch.Tensor, torch.Tensor]:
        frame = shard(split)
        x = torch.tensor(frame[features].to_numpy(dtype="float32"))
        if classes:
            return x, torch.tensor(label_index(frame[target], classes).to_numpy(), dtype=torch.long)
        return x, torch.tensor(frame[target].to_numpy(dtype="float32")).reshape(-1, 1)

    x, y = tensors("train")
    x_valid, y_valid = tensors("validation")
    model = build_mlp(
        len(features), config["hidden_sizes"], len(classes) or 1, config["mean"], config["std"]
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=config["learning_rate"])
    done = 0
    resumed = ray.train.get_checkpoint() or (
        ray.train.Checkpoint.from_directory(config["resume"]) if config["resume"] else None
    )
    if resumed:
        with resumed.as_directory() as folder:
            state = torch.load(Path(folder) / STATE_FILE, weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        done = state["epoch"]
    model = ray.train.torch.prepare_model(model)
    loss_of = nn.CrossEntropyLoss() if classes else nn.MSELoss()
    rank = ray.train.get_context().get_world_rank()
    generator = torch.Generator().manual_seed(config["seed"] + rank)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x, y),
        batch_size=config["batch_size"],
        shuffle=True,
        generator=generator,
    )
    for epoch in range(done + 1, config["epochs"] + 1):
        model.train()
        total = torch.zeros(4)  # train loss sum, train rows, validation loss sum, its rows
        for batch_x, batch_y in loader:
            optimizer.zero_grad()
            loss = loss_of(model(batch_x), batch_y)
            loss.backward()
            optimizer.step()
            total[0] += loss.item() * len(batch_x)
            total[1] += len(batch_x)
        model.eval()
        with torch.no_grad():
            total[2] = loss_of(model(x_valid), y_valid).item() * len(x_valid)
            total[3] = len(x_valid)
        # Every worker's rows count: the losses are of the whole dataset, not one shard.
        torch.distributed.all_reduce(total)
        metrics = {
            "epoch": epoch,
            "loss": float(total[0] / total[1]),
            "validation_loss": float(total[2] / max(total[3], 1)),
        }
        with tempfile.TemporaryDirectory() as folder:
            checkpoint = None
            if rank == 0:
                state = {
                    "model": getattr(model, "module", model).state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "epoch": epoch,
                }
                torch.save(state, Path(folder) / STATE_FILE)
                checkpoint = ray.train.Checkpoint.from_directory(folder)
            ray.train.report(metrics, checkpoint=checkpoint)


def _epochs_done(checkpoint: Path) -> int:
    import torch

    if not (checkpoint / STATE_FILE).exists():
        raise SystemExit(f"{NAME}: {checkpoint} is not a checkpoint of the built-in MLP")
    return int(torch.load(checkpoint / STATE_FILE, weights_only=True)["epoch"])


def run(params: Params) -> dict[str, Any]:
    if params.train_module:
        return _run_user_code(params)
    return _run_mlp(params)


def _run_mlp(params: Params) -> dict[str, Any]:
    import numpy as np
    import torch

    data = _train.load_tabular(NAME, params)
    classes = _train.classes(params, data)
    resume = _train.resume_point(NAME, params.resume_from)
    if resume:
        done = _epochs_done(resume)
        if done >= params.epochs:
            raise SystemExit(
                f"{NAME}: {resume} has {done} epochs already; ask for more --epochs to go on"
            )
        print(f"{NAME}: resuming from {resume} after epoch {done}", flush=True)
    values = data.train[data.features].to_numpy(dtype="float64")
    mean, std = values.mean(axis=0), values.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    config = {
        "features": data.features,
        "target": params.target,
        "classes": classes,
        "hidden_sizes": params.hidden_sizes,
        "mean": mean.tolist(),
        "std": std.tolist(),
        "epochs": params.epochs,
        "batch_size": params.batch_size,
        "learning_rate": params.learning_rate,
        "seed": params.seed,
        "resume": str(resume) if resume else None,
    }
    result = _train.torch_trainer(NAME, train_loop, config, data.datasets()).fit()
    checkpoint = Path(result.checkpoint.path)
    model = build_mlp(
        len(data.features), params.hidden_sizes, len(classes) or 1, config["mean"], config["std"]
    )
    model.load_state_dict(torch.load(checkpoint / STATE_FILE, weights_only=True)["model"])
    model.eval()
    scripted = torch.jit.script(model)
    path = runtime.run_dir() / MODEL_FILE
    torch.jit.save(scripted, str(path), _extra_files={"features": json.dumps(data.features)})
    with torch.no_grad():
        output = scripted(torch.tensor(data.validation[data.features].to_numpy(dtype="float32")))
    predicted = (
        np.asarray(classes)[output.argmax(dim=1).numpy()] if classes else output[:, 0].numpy()
    )
    scores = _tabular.scores(params.task, data.validation[params.target], predicted)
    runtime.report_metrics(step=params.epochs, **scores)
    outputs: dict[str, Any] = {
        "model_uri": str(path),
        "checkpoint_uri": str(checkpoint),
        "framework": "torchscript",
        "metrics": {**scores, **_last_losses(result.metrics)},
        "features": data.features,
        "epochs": params.epochs,
        "train_rows": len(data.train),
        "validation_rows": len(data.validation),
    }
    if classes:
        outputs["classes"] = classes
    return outputs


def _last_losses(reported: dict[str, Any] | None) -> dict[str, float]:
    return {k: float(v) for k, v in (reported or {}).items() if k.endswith("loss")}


def _run_user_code(params: Params) -> dict[str, Any]:
    """The user's function on the workers, with `config` (and the run's checkpoint to resume
    from as `config["resume_from"]`); a `model.pt` in its last checkpoint is the model."""
    import shutil

    try:
        module = importlib.import_module(params.train_module or "")
    except ImportError as exc:
        raise SystemExit(
            f"{NAME}: cannot import {params.train_module} ({exc}); is it in the job's working dir?"
        ) from None
    loop = getattr(module, params.train_function, None)
    if not callable(loop):
        raise SystemExit(f"{NAME}: {params.train_module} has no function {params.train_function}")
    datasets = None
    if params.dataset and params.target:
        datasets = _train.load_tabular(NAME, params).datasets()
    resume = _train.resume_point(NAME, params.resume_from)
    config = {**params.config, "resume_from": str(resume) if resume else None}
    result = _train.torch_trainer(NAME, loop, config, datasets).fit()
    outputs: dict[str, Any] = {
        "framework": "torch",
        "metrics": {k: float(v) for k, v in (result.metrics or {}).items() if _train.is_number(v)},
    }
    if result.checkpoint:
        checkpoint = Path(result.checkpoint.path)
        outputs["checkpoint_uri"] = str(checkpoint)
        if (checkpoint / MODEL_FILE).exists():
            path = runtime.run_dir() / MODEL_FILE
            shutil.copy(checkpoint / MODEL_FILE, path)
            outputs["model_uri"] = str(path)
            outputs["framework"] = "torchscript"
    return outputs


TEMPLATE = runtime.Template(
    name=NAME,
    group=_train.GROUP,
    description=(
        "Train with PyTorch DDP on Ray Train workers: your own training function (a module in "
        "the job's working dir), or a built-in MLP on a Parquet dataset's numeric columns. "
        "Checkpoints every epoch and resumes from one; saves the MLP as TorchScript (model.pt)."
    ),
    params=Params,
    run=run,
    resources=_train.DRIVER_RESOURCES,
    outputs={
        "model_uri": "the trained model as TorchScript (model.pt)",
        "checkpoint_uri": "the last epoch's Ray Train checkpoint folder (state.pt: weights, "
        "optimizer, epochs done)",
        "framework": "torchscript (model_uri), or torch when only a checkpoint was saved",
        "metrics": "validation scores (accuracy and f1_macro, or r2 and rmse) and the last "
        "epoch's loss and validation_loss",
        "features": "the columns the model reads, in order",
        "epochs": "epochs trained in all, counting those resumed from",
        "classes": "the class of each output index (classification)",
        "train_rows": "rows trained on",
        "validation_rows": "rows evaluated on",
    },
    workers=2,
    worker_resources={"cpu": 1.0},
)

if __name__ == "__main__":
    TEMPLATE.main()
