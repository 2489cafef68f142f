"""`xgboost`: gradient-boosted trees with XGBoost on Ray Train's workers, on a Parquet dataset."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from jobs import _boosting, _train

if TYPE_CHECKING:
    import pandas as pd
    import xgboost
    from ray.train import Checkpoint
    from ray.train.xgboost import XGBoostTrainer


class Params(_boosting.Boosting):
    max_depth: int = Field(default=6, ge=1, le=64, description="the deepest a tree may grow")
    learning_rate: float = Field(
        default=0.3, gt=0, le=1, description="how much each tree's output counts (eta)"
    )
    subsample: float = Field(
        default=1.0, gt=0, le=1, description="the share of rows each tree samples"
    )
    colsample_bytree: float = Field(
        default=1.0, gt=0, le=1, description="the share of features each tree samples"
    )
    min_child_weight: float = Field(
        default=1.0, ge=0, description="the least hessian weight a leaf may hold"
    )
    reg_lambda: float = Field(default=1.0, ge=0, description="L2 regularisation of leaf weights")
    tree_method: Literal["hist", "approx", "exact"] = Field(
        default="hist", description="how trees find their splits"
    )


def settings(params: Params) -> dict[str, Any]:
    """The parameters as XGBoost names them."""
    return {
        "max_depth": params.max_depth,
        "eta": params.learning_rate,
        "subsample": params.subsample,
        "colsample_bytree": params.colsample_bytree,
        "min_child_weight": params.min_child_weight,
        "lambda": params.reg_lambda,
        "tree_method": params.tree_method,
        "seed": params.seed,
    }


def train_loop(config: dict[str, Any]) -> None:
    """On each worker: boost on its shard, all workers agreeing on each tree."""
    import xgboost
    from ray.train.xgboost import RayTrainReportCallback

    def matrix(split: str) -> xgboost.DMatrix:
        features, labels = _boosting.examples(_train.shard(split), config)
        return xgboost.DMatrix(features, label=labels)

    train, validation = matrix("train"), matrix("validation")
    xgboost.train(
        config["booster"],
        train,
        num_boost_round=config["num_boost_round"],
        evals=[(validation, "validation")],
        callbacks=[RayTrainReportCallback(frequency=0, checkpoint_at_end=True)],
        verbose_eval=False,
    )


def trainer() -> type[XGBoostTrainer]:
    from ray.train.xgboost import XGBoostTrainer

    return XGBoostTrainer


def checkpointed(checkpoint: Checkpoint) -> xgboost.Booster:
    from ray.train.xgboost import RayTrainReportCallback

    return RayTrainReportCallback.get_model(checkpoint)


def predict(booster: xgboost.Booster, frame: pd.DataFrame) -> Any:
    import xgboost

    return booster.predict(xgboost.DMatrix(frame))


TEMPLATE = _boosting.template(
    Params,
    _boosting.Library(
        name="xgboost",
        title="XGBoost",
        settings=settings,
        objectives=_boosting.Objectives(
            regression={"objective": "reg:squarederror", "eval_metric": "rmse"},
            binary={"objective": "binary:logistic", "eval_metric": "logloss"},
            multiclass={"objective": "multi:softprob", "eval_metric": "mlogloss"},
        ),
        train_loop=train_loop,
        trainer=trainer,
        checkpointed=checkpointed,
        predict=predict,
    ),
)

if __name__ == "__main__":
    TEMPLATE.main()
