"""`kmeans`: cluster a Parquet dataset with k-means (scikit-learn); no target."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from jobs import _sklearn, _tabular


class Params(_tabular.Unsupervised):
    n_clusters: int = Field(default=8, ge=2, le=10000, description="how many clusters to find")
    n_init: int = Field(
        default=10, ge=1, le=1000, description="runs from different seeds; the tightest is kept"
    )
    max_iter: int = Field(default=300, ge=1, description="the most iterations of one run")


def build(params: Params) -> Any:
    from sklearn.cluster import KMeans

    return KMeans(
        n_clusters=params.n_clusters,
        # scikit-learn has no type hints: pyright takes the default's type ("auto") for it.
        n_init=params.n_init,  # pyright: ignore[reportArgumentType]
        max_iter=params.max_iter,
        random_state=params.seed,
    )


TEMPLATE = _sklearn.template(
    name="kmeans",
    description=(
        "Cluster a Parquet dataset with k-means (scikit-learn), score the clusters on a "
        "held-out validation split (inertia, silhouette), and save the model with joblib."
    ),
    params=Params,
    build=build,
)

if __name__ == "__main__":
    TEMPLATE.main()
