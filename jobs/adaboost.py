"""`adaboost`: AdaBoost over shallow decision trees (scikit-learn) on a Parquet dataset."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from jobs import _sklearn, _tabular


class Params(_tabular.Supervised):
    n_estimators: int = Field(
        default=50, ge=1, le=10000, description="the most weak learners to boost"
    )
    learning_rate: float = Field(
        default=1.0, gt=0, description="the weight of each learner; lower needs more of them"
    )
    max_depth: int | None = Field(
        default=None,
        ge=1,
        description="each weak tree's depth; 1 (stumps) for classification and 3 for "
        "regression if not given",
    )


def build(params: Params) -> Any:
    from sklearn.ensemble import AdaBoostClassifier, AdaBoostRegressor
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    if params.task == "classification":
        booster, tree, depth = AdaBoostClassifier, DecisionTreeClassifier, 1
    else:
        booster, tree, depth = AdaBoostRegressor, DecisionTreeRegressor, 3
    return booster(
        estimator=tree(max_depth=params.max_depth or depth),
        n_estimators=params.n_estimators,
        learning_rate=params.learning_rate,
        random_state=params.seed,
    )


TEMPLATE = _sklearn.template(
    name="adaboost",
    description=(
        "Fit AdaBoost over shallow decision trees (scikit-learn) on a Parquet dataset, "
        "evaluate it on a held-out validation split, and save the model with joblib."
    ),
    params=Params,
    build=build,
)

if __name__ == "__main__":
    TEMPLATE.main()
