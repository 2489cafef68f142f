"""`decision-tree`: fit one scikit-learn decision tree on a Parquet dataset, evaluate, save it."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from jobs import _sklearn, _tabular


class Params(_tabular.Supervised):
    max_depth: int | None = Field(
        default=None, ge=1, description="the deepest the tree may grow; unlimited if not given"
    )
    min_samples_leaf: int = Field(
        default=1, ge=1, description="the fewest training rows a leaf may hold"
    )
    max_leaf_nodes: int | None = Field(
        default=None, ge=2, description="the most leaves the tree may have; unlimited if not given"
    )


def build(params: Params) -> Any:
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    tree = DecisionTreeClassifier if params.task == "classification" else DecisionTreeRegressor
    return tree(
        max_depth=params.max_depth,
        min_samples_leaf=params.min_samples_leaf,
        max_leaf_nodes=params.max_leaf_nodes,
        random_state=params.seed,
    )


TEMPLATE = _sklearn.template(
    name="decision-tree",
    description=(
        "Fit a decision tree (scikit-learn) on a Parquet dataset, evaluate it on a held-"
        "out validation split, and save the model with joblib."
    ),
    params=Params,
    build=build,
)

if __name__ == "__main__":
    TEMPLATE.main()
