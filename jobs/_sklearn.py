"""What the scikit-learn templates share: read a Parquet dataset, split, fit, score, save.

Each classic-ML template (`jobs/lr.py`, `jobs/random_forest.py`, ...) declares its own
parameters, on top of `Supervised` or `Unsupervised`, and a function that builds its
estimator; `template` turns the two into the `runtime.Template`. Private (the registry skips
modules starting with `_`), and as light as a template at import: pandas, scikit-learn and
joblib are imported inside the functions that fit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, Field

from fabric import runtime

GROUP = "classic-ml"
MODEL_FILE = "model.joblib"


class Unsupervised(BaseModel):
    """Parameters every scikit-learn template takes: the data, the split, the seed."""

    dataset: str = Field(description="a Parquet file, e.g. data-import's dataset_uri")
    features: list[str] | None = Field(
        default=None, description="the columns to learn from; all (but the target) if not given"
    )
    validation_fraction: float = Field(
        default=0.2, gt=0, lt=1, description="the share of rows held out to evaluate on"
    )
    seed: int = Field(default=0, description="seeds the split and the model")


class Supervised(Unsupervised):
    """Parameters of a template that learns to predict a column."""

    target: str = Field(description="the column to predict")
    task: Literal["classification", "regression"] = Field(
        default="classification", description="predict a class or a number"
    )


SUPERVISED_OUTPUTS = {
    "model_uri": "the saved model (joblib)",
    "framework": "how the model was saved: sklearn",
    "metrics": "scores on the validation split: accuracy and f1_macro, or r2 and rmse",
    "features": "the columns the model reads, in order",
    "train_rows": "rows fitted on",
    "validation_rows": "rows evaluated on",
}

CLUSTERING_OUTPUTS = {
    "model_uri": "the saved model (joblib)",
    "framework": "how the model was saved: sklearn",
    "metrics": "on the validation split: inertia (lower is tighter) and silhouette (-1 to 1)",
    "features": "the columns the model reads, in order",
    "cluster_sizes": "how many training rows fell in each cluster, by cluster number",
    "train_rows": "rows fitted on",
    "validation_rows": "rows evaluated on",
}


def template(
    *,
    name: str,
    description: str,
    params: type[Unsupervised],
    build: Callable[[Any], Any],
) -> runtime.Template:
    """The template of one estimator: `build(params)` makes it (importing scikit-learn there)."""
    clustering = not issubclass(params, Supervised)

    def run(values: Any) -> dict[str, Any]:
        fit = _fit_clusters if clustering else _fit_supervised
        return fit(name, values, build)

    return runtime.Template(
        name=name,
        group=GROUP,
        description=description,
        params=params,
        run=run,
        resources={"cpu": 1.0},
        outputs=CLUSTERING_OUTPUTS if clustering else SUPERVISED_OUTPUTS,
    )


def _load(name: str, params: Unsupervised, target: str | None) -> tuple[Any, list[str]]:
    """The dataset and the feature columns, or an exit naming what is missing or unusable."""
    import pandas as pd

    frame = pd.read_parquet(params.dataset)
    wanted = {*(params.features or []), *([target] if target else [])}
    missing = sorted(wanted - set(frame.columns))
    if missing:
        raise SystemExit(
            f"{name}: {params.dataset} has no column {', '.join(missing)}; "
            f"it has {', '.join(frame.columns)}"
        )
    features = params.features or [c for c in frame.columns if c != target]
    text = [c for c in features if not pd.api.types.is_numeric_dtype(frame[c])]
    if text:
        raise SystemExit(
            f"{name}: column {', '.join(text)} is not numeric; encode it first "
            "(e.g. one-hot) or leave it out of --features"
        )
    return frame, features


def _split(params: Unsupervised, frame: Any) -> tuple[Any, Any]:
    from sklearn.model_selection import train_test_split

    return train_test_split(frame, test_size=params.validation_fraction, random_state=params.seed)


def _save(model: Any) -> str:
    import joblib

    path = runtime.run_dir() / MODEL_FILE
    joblib.dump(model, path)
    return str(path)


def _scores(task: str, truth: Any, predicted: Any) -> dict[str, float]:
    from sklearn import metrics

    if task == "classification":
        return {
            "accuracy": float(metrics.accuracy_score(truth, predicted)),
            "f1_macro": float(metrics.f1_score(truth, predicted, average="macro")),
        }
    return {
        "r2": float(metrics.r2_score(truth, predicted)),
        "rmse": float(metrics.root_mean_squared_error(truth, predicted)),
    }


def _fit_supervised(name: str, params: Supervised, build: Callable[[Any], Any]) -> dict[str, Any]:
    frame, features = _load(name, params, params.target)
    train, valid = _split(params, frame)
    model = build(params)
    model.fit(train[features], train[params.target])
    scores = _scores(params.task, valid[params.target], model.predict(valid[features]))
    runtime.report_metrics(**scores)
    return {
        "model_uri": _save(model),
        "framework": "sklearn",
        "metrics": scores,
        "features": features,
        "train_rows": len(train),
        "validation_rows": len(valid),
    }


def _fit_clusters(name: str, params: Unsupervised, build: Callable[[Any], Any]) -> dict[str, Any]:
    import numpy as np
    from sklearn.metrics import silhouette_score

    frame, features = _load(name, params, None)
    train, valid = _split(params, frame)
    model = build(params)
    model.fit(train[features])
    labels = model.predict(valid[features])
    scores = {"inertia": float(-model.score(valid[features]))}
    # Silhouette needs two clusters or more among the validation rows, and fewer than rows.
    if 1 < len(set(labels)) < len(valid):
        scores["silhouette"] = float(silhouette_score(valid[features], labels))
    runtime.report_metrics(**scores)
    sizes = np.bincount(model.labels_, minlength=model.n_clusters)
    return {
        "model_uri": _save(model),
        "framework": "sklearn",
        "metrics": scores,
        "features": features,
        "cluster_sizes": [int(size) for size in sizes],
        "train_rows": len(train),
        "validation_rows": len(valid),
    }
