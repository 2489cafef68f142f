"""Saved models by framework: find one, load it, and predict with it the same way for all.

The model templates (`model-evaluate`, `model-convert`, `model-register`, `offline-predict`)
and serving read models through `load(uri, framework)`, which returns a `Model` whose
`predict(frame)` gives one prediction per row (a class or a number) and whose
`probabilities(frame)` gives each class's probability where the model has them.

Files follow the templates' conventions: scikit-learn `model.joblib`, XGBoost `model.ubj`,
LightGBM `model.txt`, TorchScript `model.pt` (also inside a `torch` run's folder), ONNX
`model.onnx`, TensorFlow a SavedModel folder or a `.keras` file; a custom model is a folder of
the user's own code, whose entry `module:Class` names a class with `load(folder)` and
`predict(frame)`. Networks (TorchScript, TensorFlow, ONNX with one output) follow one rule: an
output of one number per row is a regression, of several per row a score per class
(probabilities if they already sum to one, logits otherwise). Private and light at import,
like a template: libraries load inside the functions that use them.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, Field

from fabric import runtime
from fabric.runtime import llm_files, names

# `llm` (a Hugging Face model folder) and `lora` (a peft adapter naming its base) are served
# by vLLM, not loaded here: `fabric.runtime.llm_files` checks their folders.
Framework = Literal[
    "sklearn",
    "xgboost",
    "lightgbm",
    "torch",
    "torchscript",
    "onnx",
    "tensorflow",
    "custom",
    "llm",
    "lora",
]
FRAMEWORKS: tuple[str, ...] = get_args(Framework)
FILES = {
    "sklearn": "model.joblib",
    "xgboost": "model.ubj",
    "lightgbm": "model.txt",
    "torch": "model.pt",
    "torchscript": "model.pt",
    "onnx": "model.onnx",
}
SUFFIXES = {
    ".joblib": "sklearn",
    ".pkl": "sklearn",
    ".ubj": "xgboost",
    ".txt": "lightgbm",
    ".pt": "torchscript",
    ".onnx": "onnx",
    ".keras": "tensorflow",
}
# The registry's files (fabric.runtime.model_store writes them): a version's folder holds the model
# and its manifest; a model's folder, its aliases. A registered model is named to a template
# as `model:NAME`, `model:NAME@VERSION` or `model:NAME@ALIAS`.
MANIFEST = "manifest.json"
ALIASES = "aliases.json"
REGISTERED = "model:"
_REFERENCE = re.compile(rf"^(?P<name>{names.NAME})(?:@(?P<which>[\w.-]+))?$")
# Stored inside a converted ONNX model (metadata) or a TorchScript file (an extra file):
# the input columns in order, since neither format names them otherwise.
FEATURES_KEY = "features"


class SavedModel(BaseModel):
    """The parameters that name a saved model: those of every template that reads one."""

    model: str = Field(
        description="the model: a job id or run folder of the job that saved it, the model's "
        "own file or folder, or a registered version as model:NAME@VERSION or model:NAME@ALIAS"
    )
    framework: Framework | None = Field(
        default=None,
        description="how the model was saved; by default what its run recorded, or guessed "
        "from the file name",
    )


class ModelError(ValueError):
    """A model that cannot be found or read; the message says what to give instead."""


@dataclass(frozen=True)
class Source:
    """A model to work on: its file or folder, its framework, and the run that made it."""

    uri: Path
    framework: str
    run: Path | None
    outputs: dict[str, Any]

    @property
    def job(self) -> int | None:
        """The Fabric job that made it, when its run folder is a job's (`runs/job-ID`)."""
        match = re.fullmatch(r"job-(\d+)", self.run.name) if self.run else None
        return int(match.group(1)) if match else None


def resolve(model: str, framework: str | None = None) -> Source:
    """`model` as a Fabric job id, a run folder (its `outputs.json` names the model), or a
    model's own file or folder; the framework as given, else as the run says, else guessed."""
    if model.startswith(REGISTERED):
        return registered(runtime.project_dir() / "models", model[len(REGISTERED) :], framework)
    run: Path | None = None
    outputs: dict[str, Any] = {}
    path = Path(model).absolute()
    if model.isdigit():
        path = runtime.project_dir() / "runs" / f"job-{model}"
        if not path.is_dir():
            raise ModelError(f"job {model} has no run folder in this project ({path})")
    if (path / runtime.OUTPUTS_FILE).is_file():
        run, outputs = path, runtime.read_outputs(path)
        if "model_uri" not in outputs:
            raise ModelError(f"the run in {path} recorded no model_uri")
        path = Path(outputs["model_uri"]).absolute()
    if not path.exists():
        raise ModelError(f"no model at {path}")
    framework = framework or outputs.get("framework") or _guess(path)
    if framework not in FRAMEWORKS:
        raise ModelError(f"unknown framework {framework!r}; one of {', '.join(FRAMEWORKS)}")
    try:
        llm_files.check(path, framework)
    except llm_files.FolderError as exc:
        raise ModelError(str(exc)) from None
    return Source(uri=path, framework=framework, run=run, outputs=outputs)


def locate(models_dir: Path, reference: str) -> Path:
    """The folder of a registered version named `NAME`, `NAME@VERSION` or `NAME@ALIAS`."""
    match = _REFERENCE.match(reference)
    if not match:
        raise ModelError(f"{reference!r} is not NAME, NAME@VERSION or NAME@ALIAS")
    name, which = match["name"], match["which"]
    folder = models_dir / name
    found = folder.iterdir() if folder.is_dir() else ()
    versions = sorted(int(p.name) for p in found if p.name.isdigit())
    if not versions:
        raise ModelError(f"no registered model {name!r} in this project")
    if which is None:
        version = versions[-1]
    elif which.isdigit():
        version = int(which)
    else:
        aliases_file = folder / ALIASES
        aliases = json.loads(aliases_file.read_text()) if aliases_file.is_file() else {}
        if which not in aliases:
            known = ", ".join(sorted(aliases)) or "none"
            raise ModelError(f"model {name!r} has no alias {which!r}; its aliases: {known}")
        version = aliases[which]
    if version not in versions:
        raise ModelError(f"model {name!r} has no version {version}")
    return folder / str(version)


def registered(models_dir: Path, reference: str, framework: str | None = None) -> Source:
    """A registered version as a Source: its copy of the model, as its manifest says."""
    folder = locate(models_dir, reference)
    manifest = json.loads((folder / MANIFEST).read_text())
    outputs = {key: manifest.get(key) for key in ("metrics", "features", "entry", "base")}
    return Source(
        uri=folder / manifest["artifact"],
        framework=framework or manifest["framework"],
        run=None,
        outputs=outputs,
    )


def _guess(path: Path) -> str:
    if path.is_dir() and (path / "saved_model.pb").exists():
        return "tensorflow"
    hugging_face = llm_files.looks_like(path)
    if hugging_face:
        return hugging_face
    if path.is_dir():
        for framework in ("torchscript", "sklearn", "xgboost", "lightgbm", "onnx"):
            if (path / FILES[framework]).exists():
                return framework
    if path.suffix in SUFFIXES:
        return SUFFIXES[path.suffix]
    raise ModelError(f"cannot tell the framework of {path}; name it ({', '.join(FRAMEWORKS)})")


class Model:
    """A loaded model: predictions and class probabilities from a pandas DataFrame."""

    framework = ""

    def __init__(self, native: Any, features: list[str] | None = None) -> None:
        self.native = native
        # The input columns in order where the model records them; otherwise the caller's.
        self.features = features

    def predict(self, frame: Any) -> Any:
        """One prediction per row: the class for a classifier, the number for a regressor."""
        probabilities = self.probabilities(frame)
        if probabilities is None:
            return self._values(frame)
        return self.classes(probabilities.shape[1])[probabilities.argmax(axis=1)]

    def probabilities(self, frame: Any) -> Any | None:
        """Each row's probability of each class, a column per class; None when it has none."""
        return None

    def classes(self, count: int) -> Any:
        """The class that each column of `probabilities` stands for."""
        import numpy as np

        return np.arange(count)

    def inputs(self, frame: Any) -> Any:
        """The model's columns of `frame` as a float32 matrix (all columns if it names none)."""
        import numpy as np

        return np.asarray(self.columns(frame), dtype=np.float32)

    def columns(self, frame: Any) -> Any:
        if not self.features:
            return frame
        missing = [name for name in self.features if name not in frame.columns]
        if missing:
            raise ModelError(f"the data has no column {', '.join(missing)}, which the model reads")
        return frame[self.features]

    def _values(self, frame: Any) -> Any:
        raise NotImplementedError


class SklearnModel(Model):
    framework = "sklearn"

    def probabilities(self, frame: Any) -> Any | None:
        if not hasattr(self.native, "predict_proba"):
            return None
        return self.native.predict_proba(self.columns(frame))

    def predict(self, frame: Any) -> Any:
        return self.native.predict(self.columns(frame))

    def classes(self, count: int) -> Any:
        return self.native.classes_


class XGBoostModel(Model):
    framework = "xgboost"

    @property
    def objective(self) -> str:
        return json.loads(self.native.save_config())["learner"]["objective"]["name"]

    def _raw(self, frame: Any) -> Any:
        import xgboost

        return self.native.predict(xgboost.DMatrix(self.columns(frame)))

    def probabilities(self, frame: Any) -> Any | None:
        import numpy as np

        if self.objective == "binary:logistic":
            positive = self._raw(frame)
            return np.column_stack([1 - positive, positive])
        if self.objective == "multi:softprob":
            return self._raw(frame)
        return None

    def _values(self, frame: Any) -> Any:
        return self._raw(frame)


class LightGBMModel(Model):
    framework = "lightgbm"

    def probabilities(self, frame: Any) -> Any | None:
        import numpy as np

        objective = self.native.dump_model()["objective"].split()[0]
        if objective == "binary":
            positive = self.native.predict(self.columns(frame))
            return np.column_stack([1 - positive, positive])
        if objective.startswith("multiclass"):
            return self.native.predict(self.columns(frame))
        return None

    def _values(self, frame: Any) -> Any:
        return self.native.predict(self.columns(frame))


class NetworkModel(Model):
    """A network with one output: a number per row, or a score per class."""

    def _scores(self, frame: Any) -> Any:
        raise NotImplementedError

    def probabilities(self, frame: Any) -> Any | None:
        scores = self._scores(frame)
        if scores.ndim < 2 or scores.shape[1] == 1:
            return None
        return _as_probabilities(scores)

    def _values(self, frame: Any) -> Any:
        return self._scores(frame).reshape(len(frame))


def _as_probabilities(scores: Any) -> Any:
    """Scores per class as probabilities: kept if they already are, softmax if logits."""
    import numpy as np

    scores = np.asarray(scores, dtype=np.float64)
    if scores.min() >= 0 and np.allclose(scores.sum(axis=1), 1, atol=1e-4):
        return scores
    shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


class TorchScriptModel(NetworkModel):
    framework = "torchscript"

    def _scores(self, frame: Any) -> Any:
        import torch

        device = next(self.native.parameters(), torch.zeros(0)).device
        with torch.no_grad():
            return self.native(torch.from_numpy(self.inputs(frame)).to(device)).cpu().numpy()


class TensorFlowModel(NetworkModel):
    framework = "tensorflow"

    def _scores(self, frame: Any) -> Any:
        import numpy as np

        output = self.native(self.inputs(frame))
        if isinstance(output, dict):
            output = next(iter(output.values())) if len(output) == 1 else output["output_0"]
        return np.asarray(output)


class OnnxModel(NetworkModel):
    """An ONNX model: converted classifiers give a label and probabilities, others one output."""

    framework = "onnx"

    def _run(self, frame: Any) -> list[Any]:
        import numpy as np

        inputs = self.native.get_inputs()
        # One input per column (as skl2onnx makes from a DataFrame), or one matrix.
        if len(inputs) > 1 or inputs[0].name in getattr(frame, "columns", ()):
            return self.native.run(None, {i.name: _column(frame[i.name], i.type) for i in inputs})
        matrix = self.inputs(frame)
        if inputs[0].type == "tensor(double)":
            matrix = matrix.astype(np.float64)
        return self.native.run(None, {inputs[0].name: matrix})

    def _scores(self, frame: Any) -> Any:
        return self._run(frame)[-1]

    def probabilities(self, frame: Any) -> Any | None:
        outputs = self._run(frame)
        if len(outputs) == 1:
            return super().probabilities(frame)
        return _dense(outputs[1])

    def predict(self, frame: Any) -> Any:
        outputs = self._run(frame)
        if len(outputs) == 1:
            return super().predict(frame)
        return outputs[0]


def _column(values: Any, kind: str) -> Any:
    import numpy as np

    types = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(int64)": np.int64}
    return values.to_numpy(dtype=types.get(kind, object)).reshape(-1, 1)


def _dense(probabilities: Any) -> Any:
    """ONNX classifiers' probabilities as a matrix, also from a list of {class: p} maps."""
    import numpy as np

    if isinstance(probabilities, list):
        keys = sorted(probabilities[0])
        return np.array([[row[key] for key in keys] for row in probabilities])
    return np.asarray(probabilities)


def load(uri: str | Path, framework: str, *, gpu: bool = False, entry: str | None = None) -> Model:
    """The model saved at `uri` by `framework`'s convention; ModelError when it cannot be read.

    With `gpu`, TorchScript, XGBoost and ONNX models predict on the GPU where this process
    sees one (TensorFlow takes one by itself); the others always run on the CPU. A `custom`
    model needs its `entry`, `module:Class`.
    """
    path = Path(uri)
    if path.is_dir() and framework in FILES and (path / FILES[framework]).exists():
        path = path / FILES[framework]
    if not path.exists():
        raise ModelError(f"no {framework} model at {path}")
    if framework == "custom":
        return _load_custom(path, entry)
    if framework in llm_files.FRAMEWORKS:
        raise ModelError(
            f"a {framework} model is served by vLLM (an LLM endpoint), not loaded as a model "
            "that predicts from a table"
        )
    loaders = {
        "sklearn": _load_sklearn,
        "xgboost": _load_xgboost,
        "lightgbm": _load_lightgbm,
        "torch": _load_torchscript,
        "torchscript": _load_torchscript,
        "onnx": _load_onnx,
        "tensorflow": _load_tensorflow,
    }
    if framework not in loaders:
        raise ModelError(f"unknown framework {framework!r}; one of {', '.join(FRAMEWORKS)}")
    return loaders[framework](path, gpu)


def _load_sklearn(path: Path, gpu: bool) -> Model:
    import joblib

    model = joblib.load(path)
    names = getattr(model, "feature_names_in_", None)
    return SklearnModel(model, list(names) if names is not None else None)


def _load_xgboost(path: Path, gpu: bool) -> Model:
    import xgboost

    booster = xgboost.Booster(model_file=str(path))
    if gpu:
        booster.set_param({"device": "cuda"})
    names = booster.feature_names
    return XGBoostModel(booster, list(names) if names is not None else None)


def _load_lightgbm(path: Path, gpu: bool) -> Model:
    import lightgbm

    booster = lightgbm.Booster(model_file=str(path))
    names = booster.feature_name()
    # LightGBM names columns Column_0, Column_1, ... when it was fitted on a bare matrix.
    named = names and names != [f"Column_{i}" for i in range(len(names))]
    return LightGBMModel(booster, names if named else None)


def _load_torchscript(path: Path, gpu: bool) -> Model:
    import torch

    if path.suffix != ".pt" or path.is_dir():
        raise ModelError(
            f"{path} is not a TorchScript model.pt; a checkpoint of weights needs its code to "
            "load: give the model.pt the training job saved beside it"
        )
    extra = {FEATURES_KEY: ""}
    device = "cuda" if gpu and torch.cuda.is_available() else "cpu"
    module = torch.jit.load(str(path), map_location=device, _extra_files=extra)
    module.eval()
    features = json.loads(extra[FEATURES_KEY]) if extra[FEATURES_KEY] else None
    return TorchScriptModel(module, features)


def _load_onnx(path: Path, gpu: bool) -> Model:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    # Converted classifiers declare a label of one row; ORT warns on every batch otherwise.
    options.log_severity_level = 3
    providers = ["CPUExecutionProvider"]
    if gpu and "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    session = onnxruntime.InferenceSession(str(path), options, providers=providers)
    stored = session.get_modelmeta().custom_metadata_map.get(FEATURES_KEY)
    return OnnxModel(session, json.loads(stored) if stored else None)


def _load_tensorflow(path: Path, gpu: bool) -> Model:
    import tensorflow as tf

    if path.is_dir() and not (path / "saved_model.pb").exists():
        files = sorted(path.glob("*.keras"))
        if not files:
            raise ModelError(f"{path} holds neither a SavedModel nor a .keras file")
        path = files[0]
    if path.suffix in (".keras", ".h5"):
        return TensorFlowModel(tf.keras.models.load_model(path, compile=False))
    loaded = tf.saved_model.load(str(path))
    signature = loaded.signatures["serving_default"]
    [name] = signature.structured_input_signature[1]
    return TensorFlowModel(lambda matrix: signature(**{name: tf.constant(matrix)}))


class CustomModel(Model):
    """The user's own class: its `predict(frame)` gives the predictions as they are."""

    framework = "custom"

    def predict(self, frame: Any) -> Any:
        return self.native.predict(frame)


_ENTRY = re.compile(r"^(?P<module>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*):(?P<name>[A-Za-z_]\w*)$")


def _load_custom(path: Path, entry: str | None) -> Model:
    """Import `module:Class` from the model's folder, make one and let it load the folder.

    The folder goes first on sys.path, so the user's module may import its siblings. Where the
    folder holds the module and one of that name was imported earlier from elsewhere (another
    custom model's folder), the earlier one is forgotten, so each model gets its own code.
    """
    if not path.is_dir():
        raise ModelError(f"a custom model is a folder holding its code; {path} is a file")
    if not entry:
        raise ModelError(f"the custom model at {path} needs its entry, module:Class")
    match = _ENTRY.match(entry)
    if not match:
        raise ModelError(f"the entry {entry!r} of a custom model is not module:Class")
    module_name, class_name = match["module"], match["name"]
    folder = str(path.resolve())
    if folder in sys.path:
        sys.path.remove(folder)
    sys.path.insert(0, folder)
    top = module_name.partition(".")[0]
    if (path / f"{top}.py").is_file() or (path / top).is_dir():
        stale = [
            name
            for name, cached in sys.modules.items()
            if (name == top or name.startswith(f"{top}."))
            and not str(getattr(cached, "__file__", "")).startswith(folder + os.sep)
        ]
        for name in stale:
            del sys.modules[name]
    importlib.invalidate_caches()
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ModelError(
            f"cannot import {module_name} of the custom model at {path}: {exc}"
        ) from exc
    cls = getattr(module, class_name, None)
    if not isinstance(cls, type):
        raise ModelError(f"{module_name} of the custom model at {path} has no class {class_name}")
    lacking = [name for name in ("load", "predict") if not callable(getattr(cls, name, None))]
    if lacking:
        raise ModelError(
            f"{entry} of the custom model at {path} has no {' or '.join(lacking)} method"
        )
    instance = cls()
    instance.load(path)
    return CustomModel(instance, getattr(instance, "features", None))
