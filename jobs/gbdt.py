"""`gbdt`: gradient-boosted trees (scikit-learn's histogram boosting) on a Parquet dataset."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from jobs import _sklearn, _tabular


class Params(_tabular.Supervised):
    max_iter: int = Field(
        default=100, ge=1, le=10000, description="boosting rounds (one tree each, per class)"
    )
    learning_rate: float = Field(
        default=0.1, gt=0, le=1, description="how much each tree corrects the ones before"
    )
    max_depth: int | None = Field(
        default=None, ge=1, description="the deepest a tree may grow; unlimited if not given"
    )
    max_leaf_nodes: int = Field(default=31, ge=2, description="the most leaves a tree may have")
    l2_regularization: float = Field(
        default=0.0, ge=0, description="penalty on leaf values; larger is smoother"
    )


def build(params: Params) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    boosting = (
        HistGradientBoostingClassifier
        if params.task == "classification"
        else HistGradientBoostingRegressor
    )
    return boosting(
        max_iter=params.max_iter,
        learning_rate=params.learning_rate,
        max_depth=params.max_depth,
        max_leaf_nodes=params.max_leaf_nodes,
        l2_regularization=params.l2_regularization,
        random_state=params.seed,
    )


TEMPLATE = _sklearn.template(
    name="gbdt",
    description=(
        "Fit gradient-boosted decision trees (scikit-learn's HistGradientBoosting) on a "
        "Parquet dataset, evaluate them on a held-out validation split, and save the "
        "model with joblib."
    ),
    params=Params,
    build=build,
)

if __name__ == "__main__":
    TEMPLATE.main()
