"""data-process and feature-process as real jobs on Ray Data, and the expression grammar."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest

from jobs._data import Expression, ExpressionError
from tests.factories import create_project
from tests.jobs import wait_for
from tests.server import Server
from tests.stacks import RAY_ONCE
from tests.templates.runs import finish, local, submit

SMALL = {"workers": 2, "worker_resources": {"cpu": 0.25}, "resources": {"cpu": 0.25}}
CITIES = ["paris", "lyon", "nice", None]
PROCESS = {
    "fill_na": {"age": -1, "city": "unknown"},
    "casts": {"code": "int"},
    "derive": {"double": "x * 2", "adult": "age >= 18"},
    "filter": "x < 300 and city != 'nice'",
    "columns": ["x", "double", "adult", "age", "city", "code", "label"],
    "validation_fraction": 0.2,
    "test_fraction": 0.1,
    "seed": 7,
}
FEATURES = {
    "standard": ["x"],
    "min_max": ["double"],
    "one_hot": ["city"],
    "hashing": ["code"],
    "hash_features": 8,
    "buckets": ["age"],
    "n_buckets": 4,
    "drop": ["adult"],
}


def _people(rows: int = 400) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "x": [float(i) for i in range(rows)],
            "age": [None if i % 7 == 0 else float(i % 70) for i in range(rows)],
            "city": [CITIES[i % 4] for i in range(rows)],
            "code": [str(i % 13) for i in range(rows)],
            "label": [i % 2 for i in range(rows)],
        }
    )


def _expected() -> pd.DataFrame:
    """What PROCESS makes of `_people()`, by plain pandas."""
    frame = _people().fillna({"age": -1, "city": "unknown"})
    frame["code"] = frame["code"].astype(int)
    frame["double"] = frame["x"] * 2
    frame["adult"] = frame["age"] >= 18
    frame = frame[(frame["x"] < 300) & (frame["city"] != "nice")]
    return frame[PROCESS["columns"]].sort_values("x").reset_index(drop=True)


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    """Sorted by x, to compare rows whatever order the splits and files hold them in."""
    return frame.sort_values("x").reset_index(drop=True)


@dataclass
class Project:
    server: Server
    name: str
    token: str


@pytest.fixture(scope="module")
def project(server: Server) -> Project:
    created = create_project(server)
    return Project(server, created.name, created.member.token)


@pytest.fixture(scope="module")
def bad_cast(project: Project, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A data-process job asked to cast text to numbers, started early to run beside others."""
    source = tmp_path_factory.mktemp("bad") / "people.parquet"
    _people().to_parquet(source)
    params = {"dataset": str(source), "name": "bad", "casts": {"city": "float"}}
    return submit(project.server, project.token, project.name, "data-process", params, **SMALL)


@pytest.fixture(scope="module")
def processed(
    project: Project, bad_cast: str, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """data-process with every step and a split: its outputs."""
    source = tmp_path_factory.mktemp("data") / "people.parquet"
    _people().to_parquet(source)
    params = {"dataset": str(source), "name": "people", **PROCESS}
    path = submit(project.server, project.token, project.name, "data-process", params, **SMALL)
    return finish(project.server, project.token, project.name, path)[0]


@pytest.fixture(scope="module")
def featured(project: Project, processed: dict[str, Any]) -> tuple[dict[str, Any], Path]:
    """feature-process fitted on data-process's train split, applied to all three."""
    splits = {s: processed[f"{s}_uri"] for s in ("train", "validation", "test")}
    params = {**splits, "name": "people-features", **FEATURES}
    path = submit(project.server, project.token, project.name, "feature-process", params, **SMALL)
    return finish(project.server, project.token, project.name, path)


@RAY_ONCE
def test_process_fills_casts_derives_filters_selects_and_splits(
    processed: dict[str, Any],
) -> None:
    outputs = processed
    expected = _expected()
    datasets = Path(outputs["train_uri"]).parent
    assert datasets.parent.name == "datasets" and datasets.name == "people"
    assert outputs["dataset_uri"] == outputs["train_uri"]
    assert outputs["columns"] == PROCESS["columns"]
    splits = {s: pd.read_parquet(outputs[f"{s}_uri"]) for s in ("train", "validation", "test")}
    sizes = {s: len(frame) for s, frame in splits.items()}
    assert sizes == {s: outputs[f"{s}_rows"] for s in splits}
    assert outputs["rows"] == sum(sizes.values()) == len(expected)
    # Every row lands in exactly one split, about as often as asked.
    together = pd.concat(splits.values())
    assert together["x"].is_unique
    assert 0.6 < sizes["train"] / len(expected) < 0.8
    assert 0.1 < sizes["validation"] / len(expected) < 0.3
    assert 0.03 < sizes["test"] / len(expected) < 0.2
    assert _plain(together).to_dict("records") == _plain(expected).to_dict("records")


@RAY_ONCE
def test_a_cast_the_data_refuses_fails_naming_the_column(project: Project, bad_cast: str) -> None:
    with project.server.client(project.token) as client:
        job = wait_for(lambda: client.get(bad_cast).json(), {"SUCCEEDED", "FAILED"}, 240)
        logs = client.get(f"{bad_cast}/logs").text
    assert job["status"] == "FAILED"
    assert "data-process: cannot cast column city to float" in logs


@RAY_ONCE
def test_features_are_fitted_on_train_and_applied_alike_to_every_split(
    processed: dict[str, Any], featured: tuple[dict[str, Any], Path]
) -> None:
    outputs, run_dir = featured
    raw = {s: pd.read_parquet(processed[f"{s}_uri"]).sort_values("x") for s in ("train", "test")}
    done = {s: pd.read_parquet(outputs[f"{s}_uri"]).sort_values("x") for s in ("train", "test")}
    hashed = [f"code_hash{i}" for i in range(8)]
    one_hot = ["city_lyon", "city_paris", "city_unknown"]
    assert outputs["transformed_features"] == ["x", "double", *one_hot, *hashed, "age"]
    assert outputs["features"] == ["label", *outputs["transformed_features"]]
    assert list(done["train"].columns) == outputs["features"]
    # Scaled with the train split's statistics, for train and test alike.
    mean, std = raw["train"]["x"].mean(), raw["train"]["x"].std(ddof=0)
    assert abs(done["train"]["x"].mean()) < 1e-9 and abs(done["train"]["x"].std(ddof=0) - 1) < 1e-9
    assert np.allclose(done["test"]["x"], (raw["test"]["x"] - mean) / std)
    double = raw["train"]["double"]
    expected = (raw["test"]["double"] - double.min()) / (double.max() - double.min())
    assert np.allclose(done["test"]["double"], expected)
    for frame in done.values():
        assert (frame[one_hot].sum(axis=1) == 1).all()
        assert (frame[hashed].sum(axis=1) == 1).all()
        assert set(frame["age"]) <= {0.0, 1.0, 2.0, 3.0}
    assert list(done["test"]["label"]) == list(raw["test"]["label"])
    # The saved preprocessor turns raw rows into what the job wrote; unseen values still map.
    preprocessor = joblib.load(outputs["preprocessor_uri"])
    assert Path(outputs["preprocessor_uri"]).parent == run_dir
    again = preprocessor.transform(raw["test"])
    assert np.allclose(again, done["test"][outputs["transformed_features"]].to_numpy())
    new = raw["test"].head(1).assign(city="marseille")
    [row] = preprocessor.transform(new)
    assert list(row[2:5]) == [0.0, 0.0, 0.0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a + b * 2", [3, 6, 9]),
        ("1 < a <= 2", [False, True, False]),
        ("a in [1, 3] and not b > 2", [True, False, False]),
        ("col('c d') == 'y'", [False, True, False]),
        ("length(upper(col('c d'))) + abs(-a)", [2, 3, 4]),
        ("isnull(e)", [False, True, False]),
        ("7", [7, 7, 7]),
    ],
)
def test_expressions_evaluate_over_columns(text: str, expected: list[Any]) -> None:
    frame = pd.DataFrame({"a": [1, 2, 3], "b": [1, 2, 3], "c d": ["x", "y", "x"]})
    frame["e"] = [1.0, None, 2.0]
    assert list(Expression(text).evaluate(frame)) == expected


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("__import__('os')", "__import__(...) is not one of the functions"),
        ("__import__('os').system('true')", "is outside the expression grammar"),
        ("a.__class__", "'a.__class__' is outside the expression grammar"),
        ("[x for x in a]", "outside the expression grammar"),
        ("lambda: 1", "outside the expression grammar"),
        ("a is None", "`is` is not supported"),
        ("a +", "is not an expression"),
    ],
)
def test_expressions_outside_the_grammar_are_refused(text: str, error: str) -> None:
    with pytest.raises(ExpressionError) as raised:
        Expression(text)
    assert error in str(raised.value)


def test_unknown_columns_fail_naming_them_before_any_work(tmp_path: Path) -> None:
    dataset = tmp_path / "d.parquet"
    _people(10).to_parquet(dataset)
    args = ["--dataset", str(dataset), "--name", "out"]
    bad_filter = local(
        "jobs.data_process", *args, "--filter", "height > 2 and col('sh oe') < 1", cwd=tmp_path
    )
    unsafe = local(
        "jobs.data_process", *args, "--derive", json.dumps({"y": "open('f').read()"}), cwd=tmp_path
    )
    features = local(
        "jobs.feature_process",
        *("--train", str(dataset), "--name", "f", "--one-hot", '["colour"]'),
        cwd=tmp_path,
    )
    assert bad_filter.returncode == unsafe.returncode == features.returncode == 1
    assert (
        "data-process: filter names no such column height, sh oe; "
        "the columns are x, age, city, code, label" in bad_filter.stderr
    )
    assert "data-process: derive.y: " in unsafe.stderr
    assert "is outside the expression grammar" in unsafe.stderr
    assert "feature-process: the train split" in features.stderr
    assert "names no such column colour" in features.stderr
    assert not (tmp_path / "fabric-local" / "project" / "datasets").exists()
