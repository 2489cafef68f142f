"""`random-forest`: fit scikit-learn's random forest on a Parquet dataset, evaluate, save it."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from fabric import runtime


class Params(BaseModel):
    dataset: str = Field(description="a Parquet file, e.g. data-import's dataset_uri")
    target: str = Field(description="the column to predict")
    task: Literal["classification", "regression"] = Field(
        default="classification", description="predict a class or a number"
    )
    features: list[str] | None = Field(
        default=None, description="the columns to learn from; all but the target if not given"
    )
    n_estimators: int = Field(default=100, ge=1, le=10000, description="how many trees")
    max_depth: int | None = Field(
        default=None, ge=1, description="the deepest a tree may grow; unlimited if not given"
    )
    validation_fraction: float = Field(
        default=0.2, gt=0, lt=1, description="the share of rows held out to evaluate on"
    )
    seed: int = Field(default=0, description="seeds the split and the forest")


def _metrics(task: str, truth: Any, predicted: Any) -> dict[str, float]:
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


def run(params: Params) -> dict[str, Any]:
    import joblib
    import pandas as pd
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
    from sklearn.model_selection import train_test_split

    frame = pd.read_parquet(params.dataset)
    missing = sorted({params.target, *(params.features or [])} - set(frame.columns))
    if missing:
        raise SystemExit(
            f"random-forest: {params.dataset} has no column {', '.join(missing)}; "
            f"it has {', '.join(frame.columns)}"
        )
    features = params.features or [c for c in frame.columns if c != params.target]
    train, valid = train_test_split(
        frame, test_size=params.validation_fraction, random_state=params.seed
    )
    forest = RandomForestClassifier if params.task == "classification" else RandomForestRegressor
    model = forest(
        n_estimators=params.n_estimators, max_depth=params.max_depth, random_state=params.seed
    )
    model.fit(train[features], train[params.target])
    scores = _metrics(params.task, valid[params.target], model.predict(valid[features]))
    runtime.report_metrics(**scores)
    path = runtime.run_dir() / "model.joblib"
    joblib.dump(model, path)
    return {
        "model_uri": str(path),
        "metrics": scores,
        "features": features,
        "train_rows": len(train),
        "validation_rows": len(valid),
    }


TEMPLATE = runtime.Template(
    name="random-forest",
    group="classic-ml",
    description="Fit a random forest (scikit-learn) on a Parquet dataset, evaluate it on a "
    "held-out validation split, and save the model with joblib.",
    params=Params,
    run=run,
    resources={"cpu": 1.0},
    outputs={
        "model_uri": "the saved model (joblib)",
        "metrics": "scores on the validation split: accuracy and f1_macro, or r2 and rmse",
        "features": "the columns the model reads, in order",
        "train_rows": "rows fitted on",
        "validation_rows": "rows evaluated on",
    },
)

if __name__ == "__main__":
    TEMPLATE.main()
