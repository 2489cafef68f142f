"""`model-evaluate`: score a saved model on a Parquet dataset, as a classifier or a regressor."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from fabric import runtime
from fabric.runtime import model_files

NAME = "model-evaluate"
CONFUSION_FILE = "confusion_matrix.csv"


class Params(model_files.SavedModel):
    dataset: str = Field(description="a Parquet file with the features and the true target")
    target: str = Field(description="the column holding the true class or number")
    features: list[str] | None = Field(
        default=None,
        description="the columns the model reads, in order; by default those the model or its "
        "run names, else all but the target",
    )
    task: Literal["auto", "classification", "regression"] = Field(
        default="auto",
        description="how to score; auto: classification when the model gives classes or class "
        "probabilities, regression otherwise",
    )


def _features(
    params: Params, source: model_files.Source, model: model_files.Model, frame: Any
) -> Any:
    names = (
        params.features
        or model.features
        or source.outputs.get("features")
        or [column for column in frame.columns if column != params.target]
    )
    missing = [name for name in [*names, params.target] if name not in frame.columns]
    if missing:
        raise SystemExit(
            f"{NAME}: {params.dataset} has no column {', '.join(missing)}; "
            f"it has {', '.join(frame.columns)}"
        )
    return frame[names]


def _is_classes(predicted: Any) -> bool:
    import pandas as pd

    return not pd.api.types.is_float_dtype(pd.Series(predicted))


def _classification(truth: Any, predicted: Any, probabilities: Any, classes: Any) -> Any:
    """Scores, and the confusion matrix as a table (true class by row, predicted by column)."""
    import pandas as pd
    from sklearn import metrics

    average = {"average": "macro", "zero_division": 0}
    scores = {
        "accuracy": metrics.accuracy_score(truth, predicted),
        "f1": metrics.f1_score(truth, predicted, **average),
        "precision": metrics.precision_score(truth, predicted, **average),
        "recall": metrics.recall_score(truth, predicted, **average),
    }
    present = set(pd.unique(truth))
    # ROC AUC needs probabilities, two classes or more in the data, and none the model lacks.
    if probabilities is not None and len(present) > 1 and present <= set(classes):
        if len(classes) == 2:
            scores["roc_auc"] = metrics.roc_auc_score(truth, probabilities[:, 1])
        else:
            scores["roc_auc"] = metrics.roc_auc_score(
                truth, probabilities, multi_class="ovr", labels=list(classes)
            )
    labels = sorted(present | set(pd.unique(predicted)))
    matrix = metrics.confusion_matrix(truth, predicted, labels=labels)
    table = pd.DataFrame(matrix, index=[str(x) for x in labels], columns=[str(x) for x in labels])
    table.index.name = "true"
    return {name: float(value) for name, value in scores.items()}, table


def _regression(truth: Any, predicted: Any) -> dict[str, float]:
    from sklearn import metrics

    return {
        "r2": float(metrics.r2_score(truth, predicted)),
        "rmse": float(metrics.root_mean_squared_error(truth, predicted)),
        "mae": float(metrics.mean_absolute_error(truth, predicted)),
    }


def run(params: Params) -> dict[str, Any]:
    import pandas as pd

    try:
        source = model_files.resolve(params.model, params.framework)
        model = model_files.load(source.uri, source.framework, entry=source.outputs.get("entry"))
        frame = pd.read_parquet(params.dataset)
        inputs = _features(params, source, model, frame)
        predicted = model.predict(inputs)
        probabilities = model.probabilities(inputs)
    except model_files.ModelError as exc:
        raise SystemExit(f"{NAME}: {exc}") from None
    truth = frame[params.target]
    task = params.task
    if task == "auto":
        classifies = probabilities is not None or _is_classes(predicted)
        task = "classification" if classifies else "regression"
    print(f"{NAME}: {source.framework} model {source.uri}, {len(frame)} rows, {task}", flush=True)
    outputs: dict[str, Any] = {"task": task, "rows": len(frame), "framework": source.framework}
    if task == "classification":
        classes = model.classes(probabilities.shape[1]) if probabilities is not None else []
        metrics, table = _classification(truth, predicted, probabilities, classes)
        path = runtime.run_dir() / CONFUSION_FILE
        table.to_csv(path)
        outputs["tables"] = {"confusion_matrix": str(path)}
    else:
        metrics = _regression(truth, predicted)
    runtime.report_metrics(step=None, **metrics)
    return {**outputs, "metrics": metrics}


TEMPLATE = runtime.Template(
    name=NAME,
    group="models",
    description="Score a saved model (scikit-learn, XGBoost, LightGBM, TorchScript, ONNX or "
    "TensorFlow) on a Parquet dataset: accuracy, F1, precision, recall, ROC AUC and a "
    "confusion matrix for a classifier; R², RMSE and MAE for a regressor.",
    params=Params,
    run=run,
    resources={"cpu": 1.0},
    outputs={
        "metrics": "accuracy, f1, precision, recall (macro averages) and roc_auc when the "
        "model gives probabilities; or r2, rmse and mae",
        "tables": "confusion_matrix: a CSV of counts, true class by row, predicted by column",
        "task": "classification or regression, as scored",
        "framework": "how the model was saved",
        "rows": "rows scored",
    },
)

if __name__ == "__main__":
    TEMPLATE.main()
