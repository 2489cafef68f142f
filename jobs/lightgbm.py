"""`lightgbm`: gradient-boosted trees with LightGBM on Ray Train's workers, on a Parquet
dataset."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field

from jobs import _boosting, _train

if TYPE_CHECKING:
    import lightgbm
    import pandas as pd
    from ray.train import Checkpoint
    from ray.train.lightgbm import LightGBMTrainer


class Params(_boosting.Boosting):
    num_leaves: int = Field(default=31, ge=2, le=131072, description="the most leaves per tree")
    max_depth: int = Field(
        default=-1, ge=-1, le=64, description="the deepest a tree may grow; -1 for no limit"
    )
    learning_rate: float = Field(
        default=0.1, gt=0, le=1, description="how much each tree's output counts"
    )
    min_data_in_leaf: int = Field(
        default=20, ge=1, description="the fewest rows a leaf may hold (per worker's shard)"
    )
    bagging_fraction: float = Field(
        default=1.0, gt=0, le=1, description="the share of rows each tree samples"
    )
    feature_fraction: float = Field(
        default=1.0, gt=0, le=1, description="the share of features each tree samples"
    )
    lambda_l2: float = Field(default=0.0, ge=0, description="L2 regularisation of leaf weights")


def settings(params: Params) -> dict[str, Any]:
    """The parameters as LightGBM names them."""
    return {
        "num_leaves": params.num_leaves,
        "max_depth": params.max_depth,
        "learning_rate": params.learning_rate,
        "min_data_in_leaf": params.min_data_in_leaf,
        "bagging_fraction": params.bagging_fraction,
        "bagging_freq": 1 if params.bagging_fraction < 1 else 0,
        "feature_fraction": params.feature_fraction,
        "lambda_l2": params.lambda_l2,
        "seed": params.seed,
        "verbose": -1,
    }


def train_loop(config: dict[str, Any]) -> None:
    """On each worker: LightGBM's data-parallel learner over the workers' shards."""
    import lightgbm
    from ray.train.lightgbm import (
        RayTrainReportCallback,
        get_network_params,
        normalize_pandas_for_lightgbm,
    )

    def matrix(split: str, reference: lightgbm.Dataset | None = None) -> lightgbm.Dataset:
        frame = normalize_pandas_for_lightgbm(_train.shard(split))
        features, labels = _boosting.examples(frame, config)
        return lightgbm.Dataset(features, label=labels, reference=reference)

    train = matrix("train")
    validation = matrix("validation", reference=train)
    lightgbm.train(
        {
            **config["booster"],
            "tree_learner": "data_parallel",
            "pre_partition": True,
            **get_network_params(),
        },
        train,
        num_boost_round=config["num_boost_round"],
        valid_sets=[validation],
        valid_names=["validation"],
        callbacks=[RayTrainReportCallback(frequency=0, checkpoint_at_end=True)],
    )


def trainer() -> type[LightGBMTrainer]:
    from ray.train.lightgbm import LightGBMTrainer

    return LightGBMTrainer


def checkpointed(checkpoint: Checkpoint) -> lightgbm.Booster:
    from ray.train.lightgbm import RayTrainReportCallback

    return RayTrainReportCallback.get_model(checkpoint)


def predict(booster: lightgbm.Booster, frame: pd.DataFrame) -> Any:
    return booster.predict(frame)


TEMPLATE = _boosting.template(
    Params,
    _boosting.Library(
        name="lightgbm",
        title="LightGBM",
        settings=settings,
        objectives=_boosting.Objectives(
            regression={"objective": "regression", "metric": "rmse"},
            binary={"objective": "binary", "metric": "binary_logloss"},
            multiclass={"objective": "multiclass", "metric": "multi_logloss"},
        ),
        train_loop=train_loop,
        trainer=trainer,
        checkpointed=checkpointed,
        predict=predict,
    ),
)

if __name__ == "__main__":
    TEMPLATE.main()
