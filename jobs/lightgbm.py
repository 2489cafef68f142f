"""`lightgbm`: gradient-boosted trees with LightGBM on Ray Train's workers, on a Parquet
dataset."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from fabric import runtime
from jobs import _ray, _train

NAME = "lightgbm"
MODEL_FILE = "model.txt"


class Params(_train.Tabular):
    num_boost_round: int = Field(default=100, ge=1, le=100000, description="how many trees")
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


def _booster_params(params: Params, classes: list[Any]) -> dict[str, Any]:
    settings: dict[str, Any] = {
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
    if params.task == "regression":
        return {**settings, "objective": "regression", "metric": "rmse"}
    if len(classes) == 2:
        return {**settings, "objective": "binary", "metric": "binary_logloss"}
    return {
        **settings,
        "objective": "multiclass",
        "num_class": len(classes),
        "metric": "multi_logloss",
    }


def train_loop(config: dict[str, Any]) -> None:
    """On each worker: LightGBM's data-parallel learner over the workers' shards."""
    import lightgbm
    from ray.train.lightgbm import (
        RayTrainReportCallback,
        get_network_params,
        normalize_pandas_for_lightgbm,
    )

    from jobs._train import label_index, shard

    features, target, classes = config["features"], config["target"], config["classes"]

    def matrix(split: str, reference: lightgbm.Dataset | None = None) -> lightgbm.Dataset:
        frame = normalize_pandas_for_lightgbm(shard(split))
        label = label_index(frame[target], classes) if classes else frame[target]
        return lightgbm.Dataset(frame[features], label=label, reference=reference)

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


def run(params: Params) -> dict[str, Any]:
    from ray.train.lightgbm import LightGBMTrainer, RayTrainReportCallback

    scaling = _train.scaling(NAME)
    data = _train.load_tabular(NAME, params)
    classes = _train.classes(params, data)
    _ray.connect()
    trainer = LightGBMTrainer(
        train_loop,
        train_loop_config={
            "features": data.features,
            "target": params.target,
            "classes": classes,
            "booster": _booster_params(params, classes),
            "num_boost_round": params.num_boost_round,
        },
        scaling_config=scaling,
        run_config=_train.run_config(NAME),
        datasets=data.datasets(),
    )
    result = trainer.fit()
    booster = RayTrainReportCallback.get_model(result.checkpoint)
    path = runtime.run_dir() / MODEL_FILE
    booster.save_model(str(path))

    predicted = booster.predict(data.validation[data.features])
    if classes:
        predicted = _train.predicted_classes(predicted, classes)
    scores = _train.scores(params.task, data.validation[params.target], predicted)
    runtime.report_metrics(step=params.num_boost_round, **scores)
    return _train.tabular_outputs(data, str(path), "lightgbm", scores, classes)


TEMPLATE = runtime.Template(
    name=NAME,
    group=_train.GROUP,
    description=(
        "Train gradient-boosted trees with LightGBM on Ray Train workers on a Parquet dataset, "
        "evaluate them on a held-out validation split, and save the model (model.txt)."
    ),
    params=Params,
    run=run,
    resources=_train.DRIVER_RESOURCES,
    outputs={
        **_train.TABULAR_OUTPUTS,
        "model_uri": "the saved booster (LightGBM's model.txt)",
        "classes": "the class of each predicted index (classification)",
    },
    workers=2,
    worker_resources={"cpu": 1.0},
)

if __name__ == "__main__":
    TEMPLATE.main()
