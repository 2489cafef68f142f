"""What the Ray Train templates share: Ray, the workers, the run config, data and metrics.

Each Ray Train template (`jobs/xgboost.py`, `jobs/lightgbm.py`, `jobs/pytorch.py`, ...)
connects with `_ray.connect`, asks for the workers Fabric granted with `scaling`, keeps its
checkpoints in the job's folder with `run_config` (whose callback writes each report to the
run's metrics as it happens), and reads a tabular dataset with `load_tabular`. Private (the
registry skips modules starting with `_`) and light at import: Ray, pandas and the training
libraries are imported inside the functions that use them.
"""

from __future__ import annotations

import numbers
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fabric import runtime
from fabric.runtime import environment
from jobs import _ray, _tabular

if TYPE_CHECKING:
    import pandas as pd
    import ray.data
    from ray.train import Checkpoint, RunConfig, ScalingConfig

GROUP = "distributed-training"
# The run's Ray Train storage (checkpoints, Train's own state), inside the job's folder.
TRAIN_FOLDER = "ray-train"
# Checkpoints a PyTorch template keeps: the last and the one before (should the last be torn).
KEEP_CHECKPOINTS = 2
# A driver that only coordinates the workers; the quota counts driver and workers.
DRIVER_RESOURCES = {"cpu": 0.25}


class Tabular(_tabular.Supervised):
    """Parameters of a template that learns a column of a Parquet dataset on Ray Train:
    the dataset, target, features, task, validation split and seed of the scikit-learn
    templates, so a model moves between them unchanged."""


TABULAR_OUTPUTS = {
    "model_uri": "the saved model",
    "framework": "the library that loads the model",
    "metrics": "scores on the validation split: accuracy and f1_macro, or r2 and rmse",
    "features": "the columns the model reads, in order",
    "train_rows": "rows trained on",
    "validation_rows": "rows evaluated on",
}


def scaling(name: str) -> ScalingConfig:
    """Ray Train's workers: those Fabric granted the job, on GPUs when granted some.

    Without a GPU the workers train on CPU, and the log says so.
    """
    from ray.train import ScalingConfig

    granted = runtime.workers()
    if granted.count < 1:
        raise SystemExit(
            f"{name}: the job has no Ray workers to train on; submit it with workers (e.g. "
            '"workers": 2) or run it with FABRIC_WORKERS unset to take the template\'s defaults'
        )
    resources = granted.ray_resources()
    if granted.use_gpu:
        print(f"{name}: {granted.count} workers, each on {resources['GPU']:g} GPU", flush=True)
    else:
        print(f"{name}: no GPU granted; {granted.count} workers train on CPU", flush=True)
    return ScalingConfig(
        num_workers=granted.count, use_gpu=granted.use_gpu, resources_per_worker=resources
    )


def train_folder() -> Path:
    """Where Ray Train keeps this job's runs and checkpoints."""
    folder = runtime.run_dir() / TRAIN_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def run_name(name: str) -> str:
    """A fresh name each run: Train resumes a run whose name it has seen."""
    return f"{name}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"


def run_config(name: str, **options: Any) -> RunConfig:
    """A run named afresh each time (Train resumes a run whose name it has seen) and kept
    under the job's folder, whose reports reach the job's metrics as they happen.

    `options` go to `RunConfig` (e.g. `checkpoint_config`); `callbacks` are added to ours.
    """
    from ray.train import RunConfig

    callbacks = [metrics_callback(str(runtime.run_dir())), *options.pop("callbacks", [])]
    return RunConfig(
        name=run_name(name),
        storage_path=str(train_folder()),
        callbacks=callbacks,
        **options,
    )


def _report_metrics_class() -> type:
    from ray.train import UserCallback

    class _ReportMetrics(UserCallback):
        """Runs on Train's controller: rank 0's numbers of each report, to metrics.jsonl."""

        def __init__(self, folder: str) -> None:
            self.folder = folder
            self.reports = 0

        def after_report(self, run_context: Any, metrics: list[dict[str, Any]], checkpoint: Any):
            self.reports += 1
            # Should the controller lack the job's environment, the driver's folder holds.
            os.environ.setdefault(environment.RUN_DIR, self.folder)
            first = metrics[0] if metrics else {}
            values = {k: float(v) for k, v in first.items() if is_number(v) and k != "step"}
            step = first.get("step", first.get("epoch", self.reports))
            runtime.report_metrics(step=int(step), **values)

    return _ReportMetrics


def metrics_callback(folder: str) -> Any:
    """A Train callback that appends each report's numbers to the job's `metrics.jsonl`.

    Its class is made here, not at import, since its base comes from Ray.
    """
    return _report_metrics_class()(folder)


def is_number(value: Any) -> bool:
    """A metric worth recording: a number (NumPy's too), not a flag."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


@dataclass
class TabularData:
    """A dataset split for training: frames in the driver, Ray Datasets for the workers."""

    features: list[str]
    train: pd.DataFrame
    validation: pd.DataFrame

    def datasets(self) -> dict[str, ray.data.Dataset]:
        """The splits as Ray Datasets, named as the workers ask for their shards (on the
        job's Ray: connecting first, or Ray Data would start one of its own)."""
        import ray.data

        _ray.connect()
        return {
            "train": ray.data.from_pandas(self.train),
            "validation": ray.data.from_pandas(self.validation),
        }


def load_tabular(name: str, params: Tabular) -> TabularData:
    """The dataset's numeric features and target, split with the seed as scikit-learn's
    templates split it; an exit naming a missing or text column.

    Read by the driver: a table that fits its memory, handed to Ray Data for the workers.
    """
    frame, features = _tabular.load(name, params, params.target)
    train, validation = _tabular.split(params, frame[[*features, params.target]])
    return TabularData(
        features=features,
        train=train.reset_index(drop=True),
        validation=validation.reset_index(drop=True),
    )


def shard(split: str) -> pd.DataFrame:
    """Inside a worker: this worker's part of a split, as a pandas frame."""
    import ray.train
    from ray.data import DataContext

    DataContext.get_current().enable_progress_bars = False
    dataset = ray.train.get_dataset_shard(split)
    assert dataset is not None, f"the trainer was given no {split!r} dataset"
    return dataset.materialize().to_pandas()


def latest_checkpoint(path: str | Path) -> Path | None:
    """A checkpoint folder as is; in a run's folder (or Train's), its newest checkpoint."""
    # Absolute: Train's workers do not share the driver's working folder.
    path = Path(path).resolve()
    if path.name.startswith("checkpoint_") and path.is_dir():
        return path
    found = [p for p in path.glob("**/checkpoint_*") if p.is_dir()]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def resume_point(name: str, resume_from: str | None) -> Path | None:
    """Where training continues from: the checkpoint asked for, or this job's own latest
    (a retry of a job that checkpointed before it failed)."""
    if resume_from:
        found = latest_checkpoint(resume_from)
        if found is None:
            raise SystemExit(f"{name}: no checkpoint in {resume_from}")
        return found
    return latest_checkpoint(train_folder())


def torch_trainer(
    name: str, loop: Any, config: dict[str, Any], datasets: dict[str, Any] | None = None
) -> Any:
    """A TorchTrainer of `loop` on the workers Fabric granted, keeping the last
    KEEP_CHECKPOINTS checkpoints in the job's folder."""
    from ray.train import CheckpointConfig
    from ray.train.torch import TorchTrainer

    scaling_config = scaling(name)
    _ray.connect()
    return TorchTrainer(
        loop,
        train_loop_config=config,
        scaling_config=scaling_config,
        run_config=run_config(
            name, checkpoint_config=CheckpointConfig(num_to_keep=KEEP_CHECKPOINTS)
        ),
        datasets=datasets,
    )


def checkpoint(path: Path) -> Checkpoint:
    from ray.train import Checkpoint

    return Checkpoint.from_directory(str(path))


def classes(params: Tabular, data: TabularData) -> list[Any]:
    """The classes a classifier tells apart, in the order of its output indices; none for
    regression. Boosting libraries want labels 0..K-1: `label_index` maps to them."""
    if params.task != "classification":
        return []
    return sorted(data.train[params.target].unique().tolist())


def label_index(labels: pd.Series, known: list[Any]) -> pd.Series:
    """Labels as indices into `known` (the training split's classes)."""
    return labels.map({value: index for index, value in enumerate(known)})


def predicted_classes(probabilities: Any, known: list[Any]) -> Any:
    """The most likely class of each row: from P(class 1) for two classes, else per class."""
    import numpy as np

    if probabilities.ndim == 1:
        index = (probabilities > 0.5).astype(int)
    else:
        index = probabilities.argmax(axis=1)
    return np.asarray(known)[index]


def tabular_outputs(
    data: TabularData, uri: str, framework: str, scores: dict[str, float], classes: list
) -> dict[str, Any]:
    """A Ray Train template's outputs, named alike across them (see TABULAR_OUTPUTS)."""
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
