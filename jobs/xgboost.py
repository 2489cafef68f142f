"""`xgboost`: gradient-boosted trees with XGBoost on Ray Train's workers, on a Parquet dataset."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from fabric import runtime
from jobs import _ray, _train

NAME = "xgboost"
MODEL_FILE = "model.ubj"


class Params(_train.Tabular):
    num_boost_round: int = Field(default=100, ge=1, le=100000, description="how many trees")
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


def _booster_params(params: Params, classes: list[Any]) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "max_depth": params.max_depth,
        "eta": params.learning_rate,
        "subsample": params.subsample,
        "colsample_bytree": params.colsample_bytree,
        "min_child_weight": params.min_child_weight,
        "lambda": params.reg_lambda,
        "tree_method": params.tree_method,
        "seed": params.seed,
    }
    if params.task == "regression":
        return {**settings, "objective": "reg:squarederror", "eval_metric": "rmse"}
    if len(classes) == 2:
        return {**settings, "objective": "binary:logistic", "eval_metric": "logloss"}
    return {
        **settings,
        "objective": "multi:softprob",
        "num_class": len(classes),
        "eval_metric": "mlogloss",
    }


def train_loop(config: dict[str, Any]) -> None:
    """On each worker: boost on its shard, all workers agreeing on each tree."""
    import xgboost
    from ray.train.xgboost import RayTrainReportCallback

    from jobs._train import label_index, shard

    features, target, classes = config["features"], config["target"], config["classes"]

    def matrix(split: str) -> xgboost.DMatrix:
        frame = shard(split)
        label = label_index(frame[target], classes) if classes else frame[target]
        return xgboost.DMatrix(frame[features], label=label)

    train, validation = matrix("train"), matrix("validation")
    xgboost.train(
        config["booster"],
        train,
        num_boost_round=config["num_boost_round"],
        evals=[(validation, "validation")],
        callbacks=[RayTrainReportCallback(frequency=0, checkpoint_at_end=True)],
        verbose_eval=False,
    )


def run(params: Params) -> dict[str, Any]:
    import xgboost
    from ray.train.xgboost import RayTrainReportCallback, XGBoostTrainer

    scaling = _train.scaling(NAME)
    data = _train.load_tabular(NAME, params)
    classes = _train.classes(params, data)
    _ray.connect()
    trainer = XGBoostTrainer(
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
    booster.save_model(path)

    predicted = booster.predict(xgboost.DMatrix(data.validation[data.features]))
    if classes:
        predicted = _train.predicted_classes(predicted, classes)
    scores = _train.scores(params.task, data.validation[params.target], predicted)
    runtime.report_metrics(step=params.num_boost_round, **scores)
    return _train.tabular_outputs(data, str(path), "xgboost", scores, classes)


TEMPLATE = runtime.Template(
    name=NAME,
    group=_train.GROUP,
    description=(
        "Train gradient-boosted trees with XGBoost on Ray Train workers on a Parquet dataset, "
        "evaluate them on a held-out validation split, and save the model (model.ubj)."
    ),
    params=Params,
    run=run,
    resources=_train.DRIVER_RESOURCES,
    outputs={
        **_train.TABULAR_OUTPUTS,
        "model_uri": "the saved booster (XGBoost's model.ubj)",
        "classes": "the class of each predicted index (classification)",
    },
    workers=2,
    worker_resources={"cpu": 1.0},
)

if __name__ == "__main__":
    TEMPLATE.main()
