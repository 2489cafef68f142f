"""`random-forest`: fit scikit-learn's random forest on a Parquet dataset, evaluate, save it."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from jobs import _sklearn, _tabular


class Params(_tabular.Supervised):
    n_estimators: int = Field(default=100, ge=1, le=10000, description="how many trees")
    max_depth: int | None = Field(
        default=None, ge=1, description="the deepest a tree may grow; unlimited if not given"
    )
    min_samples_leaf: int = Field(
        default=1, ge=1, description="the fewest training rows a leaf may hold"
    )


def build(params: Params) -> Any:
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    forest = RandomForestClassifier if params.task == "classification" else RandomForestRegressor
    return forest(
        n_estimators=params.n_estimators,
        max_depth=params.max_depth,
        min_samples_leaf=params.min_samples_leaf,
        random_state=params.seed,
    )


TEMPLATE = _sklearn.template(
    name="random-forest",
    description=(
        "Fit a random forest (scikit-learn) on a Parquet dataset, evaluate it on a held-"
        "out validation split, and save the model with joblib."
    ),
    params=Params,
    build=build,
)

if __name__ == "__main__":
    TEMPLATE.main()
