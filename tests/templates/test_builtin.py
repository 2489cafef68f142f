"""The built-in templates run for real: as jobs on the session's Ray head, and locally."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import r2_score

from fabric.services.templates import builtin
from tests.factories import create_project
from tests.imports import loaded_after
from tests.server import Server
from tests.stacks import RAY_ONCE
from tests.templates.runs import finish, local, run, submit


def _frame(rows: int = 200) -> pd.DataFrame:
    """A class that two columns separate cleanly, and a column of noise."""
    x = [i % 20 for i in range(rows)]
    z = [(i * 7) % 11 for i in range(rows)]
    return pd.DataFrame(
        {
            "x": x,
            "z": z,
            "noise": [(i * 13) % 5 for i in range(rows)],
            "label": [int(a + b > 14) for a, b in zip(x, z, strict=True)],
        }
    )


def test_import_a_csv_then_train_a_forest_on_it(server: Server, tmp_path: Path) -> None:
    project = create_project(server)
    token = project.member.token
    source = tmp_path / "points.csv"
    _frame().to_csv(source, index=False)

    imported, _ = run(
        server, token, project.name, "data-import", {"source": str(source), "name": "points"}
    )
    dataset = Path(imported["dataset_uri"])
    assert (
        dataset
        == Path(server.settings.storage_root)
        / "projects"
        / project.name
        / "datasets"
        / "points.parquet"
    )
    assert imported["rows"] == 200
    assert pd.read_parquet(dataset).equals(_frame())

    trained, run_dir = run(
        server,
        token,
        project.name,
        "random-forest",
        {"dataset": str(dataset), "target": "label", "n_estimators": 30, "features": ["x", "z"]},
    )
    assert trained["validation_rows"] == 40
    assert trained["metrics"]["accuracy"] >= 0.9
    model = joblib.load(trained["model_uri"])
    assert Path(trained["model_uri"]).parent == run_dir
    assert list(model.predict(pd.DataFrame({"x": [0, 19], "z": [0, 10]}))) == [0, 1]
    reported = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert reported[-1]["accuracy"] == trained["metrics"]["accuracy"]


def test_a_regression_forest_reports_r2(server: Server, tmp_path: Path) -> None:
    project = create_project(server)
    dataset = tmp_path / "line.parquet"
    frame = pd.DataFrame({"x": [float(i) for i in range(100)]})
    frame["y"] = 3 * frame["x"] + 1
    frame.to_parquet(dataset)
    trained, _ = run(
        server,
        project.member.token,
        project.name,
        "random-forest",
        {"dataset": str(dataset), "target": "y", "task": "regression", "n_estimators": 20},
    )
    assert set(trained["metrics"]) == {"r2", "rmse"}
    assert trained["metrics"]["r2"] > 0.95


# Each scikit-learn template once per task, with few estimators: small and fast.
CLASSIC_ML = ["adaboost", "bayes", "decision-tree", "gbdt", "kmeans", "knn", "lr", "random-forest"]
SMALL = {
    "adaboost": {"n_estimators": 20},
    "gbdt": {"max_iter": 20},
}
CLASSIFIERS = ["adaboost", "bayes", "decision-tree", "gbdt", "knn", "lr"]
REGRESSORS = ["adaboost", "decision-tree", "gbdt", "knn", "lr"]
CENTERS = [(0.0, 0.0), (10.0, 0.0), (0.0, 10.0)]


def _blobs(per_cluster: int = 50) -> pd.DataFrame:
    """Three tight clusters, far apart, one after another."""
    rng = np.random.default_rng(0)
    points = [rng.normal(center, 0.5, size=(per_cluster, 2)) for center in CENTERS]
    return pd.DataFrame(np.concatenate(points), columns=["a", "b"])


def _line() -> pd.DataFrame:
    """A number nearly linear in x and z, off by the noise column."""
    frame = _frame()
    frame["y"] = 3.0 * frame["x"] + 2.0 * frame["z"] + frame["noise"]
    return frame


@pytest.fixture(scope="module")
def classic_ml(server: Server, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every scikit-learn template's jobs, submitted together so that they run side by side:
    `(template, task)` to its outputs and run folder."""
    project = create_project(server)
    token = project.member.token
    folder = tmp_path_factory.mktemp("classic-ml")
    points, line, blobs = (
        folder / "points.parquet",
        folder / "line.parquet",
        folder / "blobs.parquet",
    )
    _frame().to_parquet(points)
    _line().to_parquet(line)
    _blobs().to_parquet(blobs)
    requests: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}
    for name in CLASSIFIERS:
        requests[name, "classification"] = (
            name,
            {"dataset": str(points), "target": "label", "features": ["x", "z"]},
        )
    for name in REGRESSORS:
        requests[name, "regression"] = (
            name,
            {"dataset": str(line), "target": "y", "task": "regression", "features": ["x", "z"]},
        )
    requests["kmeans", "clustering"] = ("kmeans", {"dataset": str(blobs), "n_clusters": 3})
    paths = {
        key: submit(server, token, project.name, name, {**params, **SMALL.get(name, {})})
        for key, (name, params) in requests.items()
    }
    return {key: finish(server, token, project.name, path) for key, path in paths.items()}


@RAY_ONCE
@pytest.mark.parametrize("template", CLASSIFIERS)
def test_each_classifier_separates_the_classes(classic_ml: dict[str, Any], template: str) -> None:
    outputs, run_dir = classic_ml[template, "classification"]
    assert set(outputs["metrics"]) == {"accuracy", "f1_macro"}
    # Half the rows are of each class: chance is 0.5.
    assert outputs["metrics"]["accuracy"] >= 0.85
    assert outputs["features"] == ["x", "z"]
    assert (outputs["train_rows"], outputs["validation_rows"]) == (160, 40)
    assert Path(outputs["model_uri"]) == run_dir / "model.joblib"
    model = joblib.load(outputs["model_uri"])
    assert list(model.predict(pd.DataFrame({"x": [0, 19], "z": [0, 10]}))) == [0, 1]
    reported = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert reported[-1]["accuracy"] == outputs["metrics"]["accuracy"]


@RAY_ONCE
@pytest.mark.parametrize("template", REGRESSORS)
def test_each_regressor_fits_a_near_line(classic_ml: dict[str, Any], template: str) -> None:
    outputs, _ = classic_ml[template, "regression"]
    assert set(outputs["metrics"]) == {"r2", "rmse"}
    assert outputs["metrics"]["r2"] > 0.8
    model = joblib.load(outputs["model_uri"])
    frame = _line()
    predicted = model.predict(frame[["x", "z"]])
    assert r2_score(frame["y"], predicted) > 0.8


@RAY_ONCE
def test_kmeans_finds_the_planted_clusters(classic_ml: dict[str, Any]) -> None:
    outputs, _ = classic_ml["kmeans", "clustering"]
    assert outputs["features"] == ["a", "b"]
    assert sum(outputs["cluster_sizes"]) == outputs["train_rows"] == 120
    assert len(outputs["cluster_sizes"]) == len(CENTERS)
    assert outputs["metrics"]["silhouette"] > 0.8
    assert outputs["metrics"]["inertia"] > 0
    model = joblib.load(outputs["model_uri"])
    labels = model.predict(_blobs()).reshape(len(CENTERS), -1)
    # Each planted cluster is one found cluster, and no two share one.
    assert [len(set(row)) for row in labels] == [1] * len(CENTERS)
    assert len({row[0] for row in labels}) == len(CENTERS)


def test_bayes_refuses_regression_naming_the_task(server: Server) -> None:
    project = create_project(server)
    with server.client(project.member.token) as client:
        response = client.post(
            f"/api/v1/projects/{project.name}/jobs",
            json={
                "template": "bayes",
                "params": {"dataset": "d", "target": "y", "task": "regression"},
            },
        )
    assert response.status_code == 422, response.text
    assert "params.task: Value error, naive Bayes only classifies" in response.json()["detail"]


def test_json_lines_import_runs_outside_fabric(tmp_path: Path) -> None:
    """`python -m jobs.data_import` on a laptop: folders under ./fabric-local."""
    source = tmp_path / "rows.jsonl"
    source.write_text('{"a": 1, "b": "x"}\n{"a": 2, "b": "y"}\n')
    result = local("jobs.data_import", "--source", str(source), "--name", "rows", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    dataset = tmp_path / "fabric-local" / "project" / "datasets" / "rows.parquet"
    assert pd.read_parquet(dataset).to_dict("records") == [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]
    [manifest] = (tmp_path / "fabric-local" / "runs").glob("data-import-*/outputs.json")
    assert json.loads(manifest.read_text())["rows"] == 2
    asked = json.loads((manifest.parent / "params.json").read_text())
    assert asked == {"source": str(source), "name": "rows", "format": "auto", "delimiter": ","}


def test_a_bad_flag_fails_naming_it(tmp_path: Path) -> None:
    result = local(
        "jobs.random_forest", "--dataset", "d", "--target", "y", "--seed", "x", cwd=tmp_path
    )
    assert result.returncode == 1
    assert "random-forest: seed: Input should be a valid integer" in result.stderr


def test_a_missing_or_text_column_fails_naming_it(tmp_path: Path) -> None:
    dataset = tmp_path / "d.parquet"
    pd.DataFrame({"x": [1.0, 2.0], "colour": ["red", "blue"], "y": [0, 1]}).to_parquet(dataset)
    missing = local("jobs.lr", "--dataset", str(dataset), "--target", "label", cwd=tmp_path)
    text = local("jobs.knn", "--dataset", str(dataset), "--target", "y", cwd=tmp_path)
    assert missing.returncode == text.returncode == 1
    assert f"lr: {dataset} has no column label; it has x, colour, y" in missing.stderr
    assert "knn: column colour is not numeric" in text.stderr


def test_templates_import_no_heavy_library_at_listing() -> None:
    """The server imports templates to list them: heavy libraries wait for `run`."""
    listing = (
        "import importlib, pkgutil, jobs\n"
        "[importlib.import_module('jobs.' + m.name) for m in pkgutil.iter_modules(jobs.__path__)]"
    )
    heavy = {
        *("pandas", "pyarrow", "sklearn", "joblib", "ray", "torch", "tensorflow", "deepspeed"),
        *("xgboost", "lightgbm", "optuna", "hyperopt", "av", "onnx", "onnxruntime", "skl2onnx"),
    }
    assert loaded_after(listing, heavy) == []


def test_every_template_is_named_after_its_module() -> None:
    """`jobs/data_import.py` is `data-import`: the name says which module runs."""
    found = builtin.list_all()
    assert {"data-import", *CLASSIC_ML} <= {f.template.name for f in found}
    for entry in found:
        assert entry.module == "jobs." + entry.template.name.replace("-", "_")
