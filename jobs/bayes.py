"""`bayes`: Gaussian naive Bayes (scikit-learn) on a Parquet dataset; classification only."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from jobs import _sklearn, _tabular


class Params(_tabular.Supervised):
    var_smoothing: float = Field(
        default=1e-9,
        ge=0,
        description="the share of the largest feature variance added to every variance, "
        "for stability",
    )

    @field_validator("task")
    @classmethod
    def _classifies_only(cls, task: str) -> str:
        if task != "classification":
            raise ValueError(
                "naive Bayes only classifies; for regression use lr, gbdt or random-forest"
            )
        return task


def build(params: Params) -> Any:
    from sklearn.naive_bayes import GaussianNB

    return GaussianNB(var_smoothing=params.var_smoothing)


TEMPLATE = _sklearn.template(
    name="bayes",
    description=(
        "Fit a Gaussian naive Bayes classifier (scikit-learn) on a Parquet dataset, "
        "evaluate it on a held-out validation split, and save the model with joblib."
    ),
    params=Params,
    build=build,
)

if __name__ == "__main__":
    TEMPLATE.main()
