"""Tiny saved models of every framework the model server loads, made with the libraries."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

FEATURES = ["x", "z"]

# Answers, for each row, how many rows its batch had; refuses negative x, to fail one call.
COUNTING = """
class Counting:
    features = ["x"]

    def load(self, folder):
        pass

    def predict(self, frame):
        if (frame["x"] < 0).any():
            raise ValueError("x must not be negative")
        return [len(frame)] * len(frame)
"""


def points(rows: int = 200) -> pd.DataFrame:
    """Two features, a class they mostly decide and a number they decide."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.uniform(0, 20, rows), "z": rng.uniform(0, 10, rows)})
    frame["label"] = (frame["x"] + frame["z"] + rng.normal(0, 1, rows) > 15).astype(int)
    frame["y"] = 3 * frame["x"] + 2 * frame["z"] + rng.normal(0, 1, rows)
    return frame


def sklearn(folder: Path, frame: pd.DataFrame) -> Path:
    import joblib
    from sklearn.linear_model import LogisticRegression

    path = folder / "model.joblib"
    joblib.dump(LogisticRegression().fit(frame[FEATURES], frame["label"]), path)
    return path


def xgboost(folder: Path, frame: pd.DataFrame) -> Path:
    import xgboost

    data = xgboost.DMatrix(frame[FEATURES], label=frame["label"])
    booster = xgboost.train({"objective": "binary:logistic", "max_depth": 3}, data, 10)
    booster.save_model(folder / "model.ubj")
    return folder / "model.ubj"


def lightgbm(folder: Path, frame: pd.DataFrame) -> Path:
    import lightgbm

    data = lightgbm.Dataset(frame[FEATURES], label=frame["y"])
    booster = lightgbm.train({"objective": "regression", "verbose": -1}, data, 20)
    booster.save_model(folder / "model.txt")
    return folder / "model.txt"


def torchscript(folder: Path) -> Path:
    """Two classes' logits from random weights, which is enough to compare predictions."""
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    torch.jit.save(torch.jit.script(net), folder / "model.pt")
    return folder / "model.pt"


def onnx(folder: Path, frame: pd.DataFrame) -> Path:
    """A classifier converted by skl2onnx: one matrix input, a label and probabilities."""
    from skl2onnx import to_onnx
    from sklearn.tree import DecisionTreeClassifier

    inputs = frame[FEATURES].to_numpy(np.float32)
    model = DecisionTreeClassifier(max_depth=3).fit(inputs, frame["label"])
    converted = to_onnx(model, inputs[:1], options={"zipmap": False})
    path = folder / "model.onnx"
    path.write_bytes(converted.SerializeToString())
    return path


def tensorflow(folder: Path) -> Path:
    """A SavedModel scoring three classes (softmax)."""
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3, "softmax")])
    model.export(folder / "saved", verbose=False)
    return folder / "saved"


def custom(folder: Path) -> Path:
    path = folder / "counting"
    path.mkdir()
    (path / "counting.py").write_text(COUNTING)
    return path


def corrupt(folder: Path) -> Path:
    path = folder / "corrupt.joblib"
    path.write_bytes(b"not a joblib file")
    return path
