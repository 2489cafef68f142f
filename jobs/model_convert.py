"""`model-convert`: a saved model to ONNX, checked against the original on sample rows."""

from __future__ import annotations

import json
from typing import Any

from pydantic import Field

from fabric import runtime
from fabric.runtime import model_files

NAME = "model-convert"
CONVERTIBLE = ("sklearn", "xgboost", "lightgbm", "torch", "torchscript")


class Params(model_files.SavedModel):
    dataset: str = Field(
        description="a Parquet file with the model's input columns: sample rows to check the "
        "ONNX model's predictions on"
    )
    features: list[str] | None = Field(
        default=None,
        description="the columns the model reads, in order; by default those the model or its "
        "run names, else all of the dataset's",
    )
    sample_rows: int = Field(default=100, ge=1, le=100000, description="rows to compare on")
    tolerance: float = Field(
        default=1e-4,
        ge=0,
        description="the largest difference allowed between the original's and the ONNX "
        "model's outputs (ONNX computes in 32-bit floats)",
    )
    opset: int | None = Field(
        default=None,
        ge=9,
        le=21,
        description="the ONNX opset to target; by default the newest the converter supports",
    )


def _onnx(
    source: model_files.Source, model: model_files.Model, columns: int, opset: int | None
) -> Any:
    """The ONNX model (an `onnx.ModelProto`) of one float matrix input named `input`."""
    if source.framework in ("torch", "torchscript"):
        return _torch(model, columns, opset)
    if source.framework == "sklearn":
        from skl2onnx import convert_sklearn
        from skl2onnx.common.data_types import FloatTensorType as SklearnFloats

        initial = [("input", SklearnFloats([None, columns]))]
        return convert_sklearn(
            model.native, initial_types=initial, target_opset=opset, options={"zipmap": False}
        )
    from onnxmltools.convert.common.data_types import FloatTensorType

    initial = [("input", FloatTensorType([None, columns]))]
    if source.framework == "xgboost":
        from onnxmltools import convert_xgboost

        booster = model.native.copy()
        # onnxmltools reads features by position and expects XGBoost's own names (f0, f1, ...).
        booster.feature_names = None
        return convert_xgboost(booster, initial_types=initial, target_opset=opset)
    from onnxmltools import convert_lightgbm

    return convert_lightgbm(model.native, initial_types=initial, target_opset=opset, zipmap=False)


def _torch(model: model_files.Model, columns: int, opset: int | None) -> Any:
    import io
    import warnings

    import onnx
    import torch

    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # TorchScript modules go through the TorchScript exporter, which warns it is legacy.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model.native,
            (torch.zeros(1, columns),),
            # Typed as a path, but the TorchScript exporter (dynamo=False) writes to a file
            # object as well.
            buffer,  # pyright: ignore[reportArgumentType]
            input_names=["input"],
            output_names=["output"],
            dynamic_axes={"input": {0: "rows"}, "output": {0: "rows"}},
            opset_version=opset,
            dynamo=False,
        )
    return onnx.load_from_string(buffer.getvalue())


def _difference(original: model_files.Model, converted: model_files.Model, rows: Any) -> float:
    """The largest gap between the two models' outputs: probabilities where both give them,
    else predictions (a differing class counts as 1)."""
    import numpy as np

    expected, got = original.probabilities(rows), converted.probabilities(rows)
    if expected is None or got is None:
        expected, got = original.predict(rows), converted.predict(rows)
        if not np.issubdtype(np.asarray(expected).dtype, np.floating):
            return float(np.any(np.asarray(expected) != np.asarray(got)))
    gap = np.abs(np.asarray(expected, dtype=np.float64) - np.asarray(got, dtype=np.float64))
    return float(gap.max()) if gap.size else 0.0


def run(params: Params) -> dict[str, Any]:
    import onnx
    import pandas as pd

    try:
        source = model_files.resolve(params.model, params.framework)
    except model_files.ModelError as exc:
        raise SystemExit(f"{NAME}: {exc}") from None
    if source.framework not in CONVERTIBLE:
        kind = "is ONNX already" if source.framework == "onnx" else "cannot be converted here"
        raise SystemExit(
            f"{NAME}: a {source.framework} model {kind}; ONNX conversion takes "
            f"{', '.join(CONVERTIBLE)} models"
        )
    try:
        model = model_files.load(source.uri, source.framework)
    except model_files.ModelError as exc:
        raise SystemExit(f"{NAME}: {exc}") from None
    frame = pd.read_parquet(params.dataset).head(params.sample_rows)
    features = params.features or model.features or source.outputs.get("features")
    features = features or list(frame.columns)
    missing = [name for name in features if name not in frame.columns]
    if missing:
        raise SystemExit(f"{NAME}: {params.dataset} has no column {', '.join(missing)}")
    rows = frame[features]
    print(f"{NAME}: {source.framework} model {source.uri}, {len(features)} inputs", flush=True)
    converted = _onnx(source, model, len(features), params.opset)
    onnx.helper.set_model_props(converted, {model_files.FEATURES_KEY: json.dumps(features)})
    path = runtime.run_dir() / model_files.FILES["onnx"]
    onnx.save(converted, path)
    difference = _difference(model, model_files.load(path, "onnx"), rows)
    print(f"{NAME}: largest difference on {len(rows)} rows: {difference:.3g}", flush=True)
    runtime.report_metrics(max_difference=difference)
    if difference > params.tolerance:
        raise SystemExit(
            f"{NAME}: the ONNX model differs from the original by {difference:.3g} on the sample "
            f"rows, more than --tolerance {params.tolerance}; check --features and their order"
        )
    return {
        "model_uri": str(path),
        "framework": "onnx",
        "source_framework": source.framework,
        "features": features,
        "metrics": {"max_difference": difference},
        "checked_rows": len(rows),
    }


TEMPLATE = runtime.Template(
    name=NAME,
    group="models",
    description="Convert a scikit-learn, XGBoost, LightGBM or TorchScript model to ONNX, and "
    "check that the ONNX model (run by ONNX Runtime) predicts as the original does on sample "
    "rows of a dataset.",
    params=Params,
    run=run,
    resources={"cpu": 1.0},
    outputs={
        "model_uri": "the ONNX model (model.onnx); its metadata names the input columns",
        "framework": "onnx",
        "source_framework": "how the original was saved",
        "features": "the columns the ONNX model reads, in order, as one float matrix `input`",
        "metrics": "max_difference: the largest gap between the two models' outputs",
        "checked_rows": "rows compared",
    },
)

if __name__ == "__main__":
    TEMPLATE.main()
