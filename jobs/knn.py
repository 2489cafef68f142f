"""`knn`: k-nearest neighbours (scikit-learn) on a Parquet dataset, evaluated and saved."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from jobs import _sklearn, _tabular


class Params(_tabular.Supervised):
    n_neighbors: int = Field(default=5, ge=1, le=10000, description="how many neighbours vote")
    weights: Literal["uniform", "distance"] = Field(
        default="uniform", description="every neighbour alike, or the nearer the weightier"
    )
    metric: Literal["euclidean", "manhattan"] = Field(
        default="euclidean", description="how distance is measured between rows"
    )
    scale: bool = Field(
        default=True, description="standardize the features first, so no unit dominates"
    )


def build(params: Params) -> Any:
    from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    knn = KNeighborsClassifier if params.task == "classification" else KNeighborsRegressor
    model = knn(n_neighbors=params.n_neighbors, weights=params.weights, metric=params.metric)
    return make_pipeline(StandardScaler(), model) if params.scale else model


TEMPLATE = _sklearn.template(
    name="knn",
    description=(
        "Fit k-nearest neighbours (scikit-learn) on a Parquet dataset, evaluate it on a "
        "held-out validation split, and save the model with joblib."
    ),
    params=Params,
    build=build,
)

if __name__ == "__main__":
    TEMPLATE.main()
