"""What the scikit-learn templates share: read a Parquet dataset, split, fit, score, save.

Each classic-ML template (`jobs/lr.py`, `jobs/random_forest.py`, ...) declares its own
parameters, on top of `_tabular.Supervised` or `_tabular.Unsupervised`, and a function that
builds its estimator; `template` turns the two into the `runtime.Template`. Reading, splitting
and scoring the data is `jobs/_tabular.py`'s, shared with the Ray Train templates. Private (the
registry skips modules starting with `_`), and as light as a template at import: pandas,
scikit-learn and joblib are imported inside the functions that fit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fabric import runtime
from jobs import _tabular

GROUP = "classic-ml"
MODEL_FILE = "model.joblib"


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
    params: type[_tabular.Unsupervised],
    build: Callable[[Any], Any],
) -> runtime.Template:
    """The template of one estimator: `build(params)` makes it (importing scikit-learn there)."""
    clustering = not issubclass(params, _tabular.Supervised)

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


def _save(model: Any) -> str:
    import joblib

    path = runtime.run_dir() / MODEL_FILE
    joblib.dump(model, path)
    return str(path)


def _fit_supervised(
    name: str, params: _tabular.Supervised, build: Callable[[Any], Any]
) -> dict[str, Any]:
    frame, features = _tabular.load(name, params, params.target)
    train, valid = _tabular.split(params, frame)
    model = build(params)
    model.fit(train[features], train[params.target])
    scores = _tabular.scores(params.task, valid[params.target], model.predict(valid[features]))
    runtime.report_metrics(step=None, **scores)
    return {
        "model_uri": _save(model),
        "framework": "sklearn",
        "metrics": scores,
        "features": features,
        "train_rows": len(train),
        "validation_rows": len(valid),
    }


def _fit_clusters(
    name: str, params: _tabular.Unsupervised, build: Callable[[Any], Any]
) -> dict[str, Any]:
    import numpy as np
    from sklearn.metrics import silhouette_score

    frame, features = _tabular.load(name, params, None)
    train, valid = _tabular.split(params, frame)
    model = build(params)
    model.fit(train[features])
    labels = model.predict(valid[features])
    scores = {"inertia": float(-model.score(valid[features]))}
    # Silhouette needs two clusters or more among the validation rows, and fewer than rows.
    if 1 < len(set(labels)) < len(valid):
        scores["silhouette"] = float(silhouette_score(valid[features], labels))
    runtime.report_metrics(step=None, **scores)
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
