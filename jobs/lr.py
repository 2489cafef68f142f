"""`lr`: linear models (scikit-learn): logistic regression to classify, ridge to regress."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from jobs import _sklearn, _tabular


class Params(_tabular.Supervised):
    regularization: float = Field(
        default=1.0,
        ge=0,
        description="the L2 penalty's strength (ridge's alpha; 1/C of the logistic "
        "regression); 0 for none",
    )
    max_iter: int = Field(
        default=1000, ge=1, description="the solver's most iterations (classification)"
    )
    scale: bool = Field(
        default=True, description="standardize the features first, so the penalty is fair"
    )


def build(params: Params) -> Any:
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if params.task == "classification":
        c = 1 / params.regularization if params.regularization else float("inf")
        model = LogisticRegression(C=c, max_iter=params.max_iter, random_state=params.seed)
    else:
        model = Ridge(alpha=params.regularization)
    return make_pipeline(StandardScaler(), model) if params.scale else model


TEMPLATE = _sklearn.template(
    name="lr",
    description=(
        "Fit a linear model (scikit-learn): logistic regression for classification, ridge"
        " regression for numbers, on a Parquet dataset; evaluate it on a held-out "
        "validation split and save it with joblib."
    ),
    params=Params,
    build=build,
)

if __name__ == "__main__":
    TEMPLATE.main()
