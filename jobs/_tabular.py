"""What every template that learns from a table shares: its parameters, the dataset's checks,
the split and the scores.

The scikit-learn templates (`jobs/_sklearn.py`) and the Ray Train ones (`jobs/_train.py`) read
a Parquet dataset, hold out rows and score them the same way, so that a model moves between
them unchanged and their metrics compare. Not a template (the registry skips modules
starting with `_`), and light at import: pandas and scikit-learn are imported by the
functions that use them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

if TYPE_CHECKING:
    import pandas as pd


class Unsupervised(BaseModel):
    """Parameters every tabular template takes: the data, the split, the seed."""

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


def load(name: str, params: Unsupervised, target: str | None) -> tuple[pd.DataFrame, list[str]]:
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


def split(params: Unsupervised, frame: pd.DataFrame) -> tuple[Any, Any]:
    """The rows to train on and those held out, as the seed and the fraction decide."""
    from sklearn.model_selection import train_test_split

    train, held_out = train_test_split(
        frame, test_size=params.validation_fraction, random_state=params.seed
    )
    return train, held_out


def scores(task: str, truth: Any, predicted: Any) -> dict[str, float]:
    """The validation scores: accuracy and f1_macro for a classifier, r2 and rmse otherwise."""
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
