"""`offline-predict`: predict with a saved model over a Parquet dataset on Ray Data.

Each of the job's workers is one Ray Data actor that loads the model once and predicts
batch after batch; the predictions are written as Parquet beside the columns kept.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from fabric import runtime
from fabric.runtime import model_files
from jobs import _ray

NAME = "offline-predict"
PREDICTIONS = "predictions"


class Params(model_files.SavedModel):
    dataset: str = Field(description="a Parquet file or folder of Parquet files to predict on")
    features: list[str] | None = Field(
        default=None,
        description="the columns the model reads, in order; by default those the model or its "
        "run names, else all of the dataset's",
    )
    keep: list[str] | None = Field(
        default=None,
        description="the input columns to write beside each prediction (e.g. an id column); "
        "all of them if not given",
    )
    prediction_column: str = Field(
        default="prediction", min_length=1, description="the column the predictions go in"
    )
    probabilities: bool = Field(
        default=False,
        description="also write each class's probability (columns probability_CLASS) when the "
        "model gives them",
    )
    batch_size: int = Field(default=4096, ge=1, le=1_000_000, description="rows per batch")


class Predictor:
    """One Ray Data actor: the model is loaded once, when the actor starts."""

    def __init__(
        self, source: model_files.Source, features: list[str] | None, params: Params, gpu: bool
    ) -> None:
        self.model = model_files.load(
            source.uri, source.framework, gpu=gpu, entry=source.outputs.get("entry")
        )
        self.features = features or self.model.features
        self.params = params

    def __call__(self, batch: Any) -> Any:
        inputs = batch[self.features] if self.features else batch
        keep = self.params.keep
        out = batch[keep].copy() if keep is not None else batch.copy()
        out[self.params.prediction_column] = self.model.predict(inputs)
        if self.params.probabilities:
            probabilities = self.model.probabilities(inputs)
            if probabilities is not None:
                classes = self.model.classes(probabilities.shape[1])
                for index, label in enumerate(classes):
                    out[f"probability_{label}"] = probabilities[:, index]
        return out


def _check_columns(params: Params, features: list[str] | None, columns: list[str]) -> None:
    wanted = [*(features or []), *(params.keep or [])]
    missing = [name for name in wanted if name not in columns]
    if missing:
        raise SystemExit(
            f"{NAME}: {params.dataset} has no column {', '.join(missing)}; "
            f"it has {', '.join(columns)}"
        )


def _remote_args(resources: dict[str, float]) -> dict[str, Any]:
    """One worker's resources in Ray's names as an actor's options."""
    custom = dict(resources)
    args: dict[str, Any] = {"num_cpus": custom.pop("CPU", 0), "num_gpus": custom.pop("GPU", 0)}
    if "memory" in custom:
        args["memory"] = custom.pop("memory")
    if custom:
        args["resources"] = custom
    return args


def run(params: Params) -> dict[str, Any]:
    import pyarrow.parquet as pq
    import ray

    try:
        source = model_files.resolve(params.model, params.framework)
    except model_files.ModelError as exc:
        raise SystemExit(f"{NAME}: {exc}") from None
    features = params.features or source.outputs.get("features")
    granted = runtime.workers()
    each: dict[str, float]
    if granted.count:
        actors, each = granted.count, granted.ray_resources()
        where = "a GPU" if granted.use_gpu else "the CPU (no GPU granted)"
        print(f"{NAME}: {actors} actors, each {dict(granted.resources)}, on {where}", flush=True)
    else:
        # No workers granted: one actor within the driver's own share.
        actors = 1
        each = {"CPU": 0}
        print(f"{NAME}: no workers granted; predicting in one actor on the CPU", flush=True)
    _ray.connect()
    # The actors hold the whole grant for the job's life, so reading and writing ask for no
    # CPU of their own (Ray Data's default is one): asking for more than the grant left them
    # waiting behind other projects' jobs while the actors idled, and the job stalled.
    io = {"num_cpus": 0}
    dataset = ray.data.read_parquet(params.dataset, ray_remote_args=io)
    schema = dataset.schema()
    assert schema is not None, "a Parquet dataset has a schema"
    _check_columns(params, features, list(schema.names))
    target = runtime.run_dir() / PREDICTIONS
    dataset.map_batches(
        Predictor,
        fn_constructor_kwargs={
            "source": source,
            "features": features,
            "params": params,
            "gpu": granted.use_gpu,
        },
        batch_format="pandas",
        batch_size=params.batch_size,
        concurrency=actors,
        **_remote_args(each),
    ).write_parquet(str(target), ray_remote_args=io)
    rows = sum(pq.read_metadata(path).num_rows for path in sorted(target.glob("*.parquet")))
    runtime.report_metrics(rows=rows)
    return {"predictions_uri": str(target), "rows": rows, "framework": source.framework}


TEMPLATE = runtime.Template(
    name=NAME,
    group="models",
    description="Predict with a saved model over a Parquet dataset on Ray Data: each worker "
    "loads the model once and predicts batch by batch; the predictions are written as Parquet "
    "with the input columns kept.",
    params=Params,
    run=run,
    resources={"cpu": 0.25},
    outputs={
        "predictions_uri": "a folder of Parquet files: the columns kept and the predictions",
        "rows": "rows predicted",
        "framework": "how the model was saved",
    },
    workers=2,
    worker_resources={"cpu": 1.0},
)

if __name__ == "__main__":
    TEMPLATE.main()
