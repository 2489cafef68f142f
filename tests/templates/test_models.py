"""The model templates run for real on saved models of each framework, made here with the
libraries themselves: evaluate, convert to ONNX, register, predict offline on Ray Data."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import joblib
import lightgbm
import numpy as np
import onnxruntime
import pandas as pd
import pytest
import torch
import xgboost
from sklearn import metrics
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from fabric.runtime import model_files, model_store
from tests.factories import create_project
from tests.jobs import wait_until
from tests.serve_apps import models as builders
from tests.server import Server
from tests.stacks import RAY_ONCE
from tests.templates.runs import TINY, finish, local, submit

FEATURES = ["x", "z"]


def _points(rows: int = 200) -> pd.DataFrame:
    """Two features, a class they mostly decide, a number they decide but for noise, an id."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"id": range(rows), "x": rng.uniform(0, 20, rows)})
    frame["z"] = rng.uniform(0, 10, rows)
    noise = rng.normal(0, 1, rows)
    frame["label"] = (frame["x"] + frame["z"] + 2 * noise > 15).astype(int)
    frame["y"] = 3 * frame["x"] + 2 * frame["z"] + noise
    return frame


def _sklearn_run(folder: Path, frame: pd.DataFrame) -> Path:
    """A run folder as a classic-ML job leaves it: the model and its outputs manifest."""
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(
        frame[FEATURES], frame["label"]
    )
    run = folder / "job-7"
    run.mkdir()
    joblib.dump(model, run / "model.joblib")
    outputs = {
        "model_uri": str(run / "model.joblib"),
        "framework": "sklearn",
        "metrics": {"accuracy": 0.9},
        "features": FEATURES,
    }
    (run / "outputs.json").write_text(json.dumps(outputs))
    return run


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("models")
    frame = _points()
    frame.to_parquet(folder / "points.parquet")
    return {
        "dataset": folder / "points.parquet",
        "frame": frame,
        "sklearn_run": _sklearn_run(folder, frame),
        "xgboost": builders.xgboost(folder, frame),
        "lightgbm": builders.lightgbm(folder, frame),
        "torchscript": builders.torchscript(folder),
    }


class Submitted:
    """Jobs submitted together, so that they overlap; each test waits for those it reads,
    so that no one test's time limit holds them all."""

    def __init__(self, server: Server, token: str, project: str, paths: dict[str, str]) -> None:
        self.server, self.token, self.project, self.paths = server, token, project, paths
        self.project_dir = Path(server.settings.storage_root) / "projects" / project
        self.done: dict[str, tuple[dict[str, Any], Path]] = {}

    def __getitem__(self, name: str) -> tuple[dict[str, Any], Path]:
        """The job's outputs and run folder, once it has succeeded."""
        if name not in self.done:
            self.done[name] = finish(self.server, self.token, self.project, self.paths[name])
        return self.done[name]


@pytest.fixture(scope="module")
def jobs(server: Server, models: dict[str, Any]) -> Submitted:
    """Every model template's jobs, by name."""
    project = create_project(server)
    token = project.member.token
    data = {"dataset": str(models["dataset"])}
    run = str(models["sklearn_run"])
    requests: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
        "evaluate-sklearn": ("model-evaluate", {**data, "model": run, "target": "label"}, {}),
        "evaluate-lightgbm": (
            "model-evaluate",
            {**data, "model": str(models["lightgbm"]), "target": "y", "features": FEATURES},
            {},
        ),
        "convert-sklearn": ("model-convert", {**data, "model": run}, {}),
        "convert-xgboost": ("model-convert", {**data, "model": str(models["xgboost"])}, {}),
        "convert-torchscript": (
            "model-convert",
            {**data, "model": str(models["torchscript"]), "features": FEATURES},
            {},
        ),
        "register-run": (
            "model-register",
            {"model": run, "name": "churn", "tags": {"stage": "staging"}},
            {},
        ),
        "register-file": ("model-register", {"model": str(models["xgboost"]), "name": "churn"}, {}),
        "predict": (
            "offline-predict",
            {**data, "model": run, "keep": ["id"], "probabilities": True, "batch_size": 64},
            {"workers": 1, "worker_resources": TINY},
        ),
    }
    paths = {
        key: submit(server, token, project.name, template, params, **request)
        for key, (template, params, request) in requests.items()
    }
    return Submitted(server, token, project.name, paths)


@RAY_ONCE
def test_evaluate_scores_a_classifier_and_tables_its_confusion(
    jobs: Submitted, models: dict[str, Any]
) -> None:
    outputs, run_dir = jobs["evaluate-sklearn"]
    frame = models["frame"]
    model = joblib.load(models["sklearn_run"] / "model.joblib")
    predicted = model.predict(frame[FEATURES])
    macro = {"average": "macro"}
    assert outputs["task"] == "classification"
    assert outputs["metrics"] == pytest.approx(
        {
            "accuracy": metrics.accuracy_score(frame["label"], predicted),
            "f1": metrics.f1_score(frame["label"], predicted, **macro),
            "precision": metrics.precision_score(frame["label"], predicted, **macro),
            "recall": metrics.recall_score(frame["label"], predicted, **macro),
            "roc_auc": metrics.roc_auc_score(
                frame["label"], model.predict_proba(frame[FEATURES])[:, 1]
            ),
        }
    )
    table = pd.read_csv(outputs["tables"]["confusion_matrix"], index_col="true")
    assert Path(outputs["tables"]["confusion_matrix"]).parent == run_dir
    expected = metrics.confusion_matrix(frame["label"], predicted)
    assert table.to_numpy().tolist() == expected.tolist()
    assert list(table.columns) == ["0", "1"]


@RAY_ONCE
def test_evaluate_scores_a_regressor(jobs: Submitted, models: dict[str, Any]) -> None:
    outputs, _ = jobs["evaluate-lightgbm"]
    frame = models["frame"]
    predicted = lightgbm.Booster(model_file=models["lightgbm"]).predict(frame[FEATURES])
    assert (outputs["task"], outputs["framework"], outputs["rows"]) == (
        "regression",
        "lightgbm",
        200,
    )
    assert outputs["metrics"] == pytest.approx(
        {
            "r2": metrics.r2_score(frame["y"], predicted),
            "rmse": metrics.root_mean_squared_error(frame["y"], predicted),
            "mae": metrics.mean_absolute_error(frame["y"], predicted),
        }
    )
    assert outputs["metrics"]["r2"] > 0.9
    assert "tables" not in outputs


def _onnx(path: str, frame: pd.DataFrame) -> list[Any]:
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    stored = session.get_modelmeta().custom_metadata_map["features"]
    assert json.loads(stored) == FEATURES
    return session.run(None, {"input": frame[FEATURES].to_numpy(np.float32)})


@RAY_ONCE
def test_convert_makes_onnx_that_predicts_as_the_original(
    jobs: Submitted, models: dict[str, Any]
) -> None:
    frame = models["frame"]
    original = joblib.load(models["sklearn_run"] / "model.joblib")
    booster = xgboost.Booster(model_file=models["xgboost"])
    network = torch.jit.load(models["torchscript"])
    expected = {
        "sklearn": original.predict_proba(frame[FEATURES]),
        "xgboost": booster.predict(xgboost.DMatrix(frame[FEATURES])),
        "torchscript": network(torch.tensor(frame[FEATURES].to_numpy(np.float32))).detach(),
    }
    for framework, wanted in expected.items():
        outputs, run_dir = jobs[f"convert-{framework}"]
        assert (outputs["framework"], outputs["source_framework"]) == ("onnx", framework)
        assert Path(outputs["model_uri"]) == run_dir / "model.onnx"
        assert outputs["features"] == FEATURES
        assert outputs["checked_rows"] == 100
        assert 0 <= outputs["metrics"]["max_difference"] < 1e-4
        got = _onnx(outputs["model_uri"], frame)[-1]
        if framework == "xgboost":
            got = got[:, 1]
        np.testing.assert_allclose(got, np.asarray(wanted), atol=1e-4)
    # Loaded as ONNX, the converted classifier names the same classes as the original.
    converted = model_files.load(jobs["convert-sklearn"][0]["model_uri"], "onnx")
    assert converted.predict(frame).tolist() == original.predict(frame[FEATURES]).tolist()


@RAY_ONCE
def test_register_numbers_versions_and_keeps_a_manifest(
    jobs: Submitted, models: dict[str, Any]
) -> None:
    from_run, run_dir = jobs["register-run"]
    from_file, _ = jobs["register-file"]
    # Registered at the same time: each took its own number.
    assert {from_run["model_version"], from_file["model_version"]} == {1, 2}
    folder = jobs.project_dir / "models" / "churn"
    assert sorted(p.name for p in folder.iterdir()) == ["1", "2"]

    source = models["sklearn_run"] / "model.joblib"
    copy = Path(from_run["model_uri"])
    assert copy == folder / str(from_run["model_version"]) / "model.joblib"
    assert copy.read_bytes() == source.read_bytes()
    manifest = json.loads((copy.parent / "manifest.json").read_text())
    assert manifest["sha256"] == from_run["sha256"] == hashlib.sha256(copy.read_bytes()).hexdigest()
    assert manifest["name"] == from_run["model_name"] == "churn"
    assert manifest["version"] == from_run["model_version"]
    assert manifest["framework"] == "sklearn"
    assert manifest["metrics"] == {"accuracy": 0.9}
    assert manifest["features"] == FEATURES
    assert manifest["source"] == {
        "uri": str(source),
        "run": str(source.parent),
        "job": 7,
        "dataset": None,
    }
    assert manifest["registered_by_job"] == int(run_dir.name.removeprefix("job-"))
    assert manifest["tags"] == {"stage": "staging"}
    assert manifest["created_at"].endswith("+00:00")

    other = json.loads(Path(from_file["manifest_uri"]).read_text())
    assert (other["framework"], other["source"]["job"], other["metrics"]) == ("xgboost", None, {})
    assert Path(from_file["model_uri"]).read_bytes() == models["xgboost"].read_bytes()

    # The server entered both versions into the project's registry when the jobs succeeded.
    with jobs.server.client(jobs.token) as client:
        registered = wait_until(
            lambda: client.get(f"/api/v1/projects/{jobs.project}/models/churn").json(),
            lambda model: len(model.get("versions", [])) == 2,
        )
    by_version = {v["version"]: v for v in registered["versions"]}
    entered = by_version[from_run["model_version"]]
    assert entered["sha256"] == from_run["sha256"]
    assert entered["uri"] == from_run["model_uri"]
    assert entered["lineage"]["job"] == 7
    assert entered["signature"]["inputs"] == [{"name": n, "type": "number"} for n in FEATURES]
    assert by_version[from_file["model_version"]]["framework"] == "xgboost"


@RAY_ONCE
def test_offline_predict_writes_predictions_beside_the_ids(
    jobs: Submitted, models: dict[str, Any]
) -> None:
    outputs, run_dir = jobs["predict"]
    frame = models["frame"]
    assert outputs["rows"] == 200
    assert Path(outputs["predictions_uri"]) == run_dir / "predictions"
    written = pd.read_parquet(outputs["predictions_uri"]).sort_values("id")
    assert list(written.columns) == ["id", "prediction", "probability_0", "probability_1"]
    model = joblib.load(models["sklearn_run"] / "model.joblib")
    assert written["id"].tolist() == frame["id"].tolist()
    assert written["prediction"].tolist() == model.predict(frame[FEATURES]).tolist()
    np.testing.assert_allclose(
        written[["probability_0", "probability_1"]], model.predict_proba(frame[FEATURES])
    )


def test_tensorflow_models_load_as_keras_files_and_saved_models(tmp_path: Path) -> None:
    """Both forms a TensorFlow job may save predict alike: a regressor, then a classifier."""
    import keras

    frame = _points(20)
    inputs = frame[FEATURES].to_numpy(np.float32)
    keras.utils.set_random_seed(0)
    for units, activation in ((1, None), (3, "softmax")):
        model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(units, activation)])
        expected = model.predict(inputs, verbose=0)
        model.save(tmp_path / f"model{units}.keras")
        model.export(tmp_path / f"saved{units}", verbose=False)
        for path in (tmp_path / f"model{units}.keras", tmp_path / f"saved{units}"):
            loaded = model_files.load(path, "tensorflow")
            if units == 1:
                assert loaded.probabilities(frame[FEATURES]) is None
                np.testing.assert_allclose(loaded.predict(frame[FEATURES]), expected[:, 0], 1e-5)
            else:
                np.testing.assert_allclose(loaded.probabilities(frame[FEATURES]), expected, 1e-5)
                assert loaded.predict(frame[FEATURES]).tolist() == expected.argmax(1).tolist()


def test_a_framework_onnx_cannot_take_fails_naming_those_it_can(tmp_path: Path) -> None:
    saved = tmp_path / "saved"
    saved.mkdir()
    (saved / "saved_model.pb").write_bytes(b"")
    result = local("jobs.model_convert", "--model", str(saved), "--dataset", "d", cwd=tmp_path)
    assert result.returncode == 1
    assert (
        "model-convert: a tensorflow model cannot be converted here; ONNX conversion takes "
        "sklearn, xgboost, lightgbm, torch, torchscript models" in result.stderr
    )


def test_evaluate_names_a_missing_column_or_an_unknown_model(
    tmp_path: Path, models: dict[str, Any]
) -> None:
    dataset = str(models["dataset"])
    missing = local(
        "jobs.model_evaluate",
        *("--model", str(models["xgboost"]), "--dataset", dataset, "--target", "churned"),
        cwd=tmp_path,
    )
    assert missing.returncode == 1
    assert f"model-evaluate: {dataset} has no column churned; it has id, x, z, label, y" in (
        missing.stderr
    )
    (tmp_path / "model.bin").write_bytes(b"")
    unknown = local(
        "jobs.model_evaluate",
        *("--model", "model.bin", "--dataset", dataset, "--target", "label"),
        cwd=tmp_path,
    )
    assert unknown.returncode == 1
    assert f"model-evaluate: cannot tell the framework of {tmp_path / 'model.bin'}" in (
        unknown.stderr
    )


def test_a_model_is_found_by_the_id_of_the_job_that_saved_it(
    tmp_path: Path, models: dict[str, Any]
) -> None:
    """A job id names its run folder in the project; the run's outputs name the model."""
    runs = tmp_path / "fabric-local" / "project" / "runs"
    runs.mkdir(parents=True)
    shutil.copytree(models["sklearn_run"], runs / "job-12")
    outputs = json.loads((runs / "job-12" / "outputs.json").read_text())
    outputs["model_uri"] = str(runs / "job-12" / "model.joblib")
    (runs / "job-12" / "outputs.json").write_text(json.dumps(outputs))
    result = local("jobs.model_register", "--model", "12", "--name", "m", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    manifest = tmp_path / "fabric-local" / "project" / "models" / "m" / "1" / "manifest.json"
    assert json.loads(manifest.read_text())["source"]["job"] == 12
    missing = local("jobs.model_register", "--model", "13", "--name", "m", cwd=tmp_path)
    assert missing.returncode == 1
    assert f"model-register: job 13 has no run folder in this project ({runs / 'job-13'})" in (
        missing.stderr
    )


def test_templates_take_a_registered_version_by_alias(
    tmp_path: Path, models: dict[str, Any]
) -> None:
    """`model:NAME@ALIAS` reads the registry's folders, as the server leaves them."""
    models_dir = tmp_path / "fabric-local" / "project" / "models"
    source = model_files.resolve(str(models["sklearn_run"]))
    for _ in range(2):
        model_store.write_version(source, models_dir, "churn", project="local")
    model_store.write_aliases(models_dir, "churn", {"production": 1})
    data = ("--dataset", str(models["dataset"]), "--target", "label")
    result = local("jobs.model_evaluate", "--model", "model:churn@production", *data, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert str(models_dir / "churn" / "1" / "model.joblib") in result.stdout + result.stderr
    unknown = local("jobs.model_evaluate", "--model", "model:churn@staging", *data, cwd=tmp_path)
    assert unknown.returncode == 1
    assert "model 'churn' has no alias 'staging'; its aliases: production" in unknown.stderr
