"""Custom models: the user's own class, loaded from its folder by its `module:Class` entry."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from fabric.runtime import model_files

SCALER = """
from pathlib import Path

from helpers import times


class Scaler:
    features = ["x"]

    def load(self, folder):
        self.factor = float((Path(folder) / "factor.txt").read_text())

    def predict(self, frame):
        return [times(value, self.factor) for value in frame["x"]]
"""


def _custom(folder: Path, factor: float, code: str = SCALER) -> Path:
    """A custom model folder: its module, a sibling it imports, and a file it loads."""
    folder.mkdir()
    (folder / "scaling.py").write_text(code)
    (folder / "helpers.py").write_text("def times(value, factor):\n    return value * factor\n")
    (folder / "factor.txt").write_text(str(factor))
    return folder


def test_a_custom_model_loads_its_folder_and_predicts_with_its_own_code(tmp_path: Path) -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0]})
    double = model_files.load(_custom(tmp_path / "a", 2), "custom", entry="scaling:Scaler")
    assert double.framework == "custom"
    assert double.features == ["x"]
    assert list(double.predict(frame)) == [2.0, 4.0, 6.0]
    # Another model whose module has the same name gets its own code and files.
    code = SCALER.replace("times(value, self.factor)", "times(value, self.factor) + 1")
    other = model_files.load(_custom(tmp_path / "b", 10, code), "custom", entry="scaling:Scaler")
    assert list(other.predict(frame)) == [11.0, 21.0, 31.0]
    assert list(double.predict(frame)) == [2.0, 4.0, 6.0]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (None, "needs its entry, module:Class"),
        ("scaling.Scaler", "the entry 'scaling.Scaler' of a custom model is not module:Class"),
        ("absent:Scaler", "cannot import absent of the custom model at"),
        ("scaling:Missing", "scaling of the custom model at {folder} has no class Missing"),
        ("scaling:Half", "scaling:Half of the custom model at {folder} has no predict method"),
    ],
)
def test_a_custom_model_that_cannot_load_says_why(
    tmp_path: Path, entry: str | None, message: str
) -> None:
    folder = _custom(
        tmp_path / "model", 2, SCALER + "\n\nclass Half:\n    def load(self, f): ...\n"
    )
    with pytest.raises(model_files.ModelError) as error:
        model_files.load(folder, "custom", entry=entry)
    assert message.format(folder=folder) in str(error.value)


def test_a_custom_model_is_a_folder(tmp_path: Path) -> None:
    code = tmp_path / "scaling.py"
    code.write_text(SCALER)
    with pytest.raises(model_files.ModelError, match="a custom model is a folder holding its code"):
        model_files.load(code, "custom", entry="scaling:Scaler")
