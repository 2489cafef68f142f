"""The deep-learning templates on Ray Train run for real: TensorFlow and DeepSpeed on two
workers each, and Horovod's clear refusal where it is not installed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import r2_score

from fabric import runtime
from fabric.runtime import model_files
from tests.factories import create_project
from tests.jobs import wait_for
from tests.server import Server
from tests.stacks import RAY_ONCE
from tests.templates import data
from tests.templates.runs import finish, submit

QUARTER = {"cpu": 0.25}
ON_TWO_WORKERS = {"resources": QUARTER, "workers": 2, "worker_resources": QUARTER}
# Ray Train starts slowly on two busy cores; DeepSpeed compiles an op on its first run.
WAIT = 600
pytestmark = pytest.mark.timeout(1200)
# DeepSpeed's compiled op outlives the test session here, as it outlives a job in the user's
# folder: it is built once per machine, not once per run.
EXTENSIONS = Path.home() / ".cache" / "fabric-tests" / "torch_extensions"


def _epochs(run_dir: Path) -> list[dict[str, Any]]:
    """The per-epoch reports that reached the job's metrics, in order."""
    return [line for line in runtime.read_metrics(run_dir) if "loss" in line]


@pytest.fixture(scope="module")
def trained(server: Server, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A TensorFlow and a DeepSpeed job side by side, and a Horovod job: name to (outputs,
    run folder, log), the Horovod job to (its status, log)."""
    points = tmp_path_factory.mktemp("train-dl") / "points.parquet"
    data.points().to_parquet(points)
    project = create_project(server)
    token = project.member.token
    features = {"dataset": str(points), "features": ["x", "z"]}
    paths = {
        "tensorflow": submit(
            server,
            token,
            project.name,
            "tensorflow",
            {**features, "target": "label", "epochs": 15},
            **ON_TWO_WORKERS,
        ),
        "deepspeed": submit(
            server,
            token,
            project.name,
            "deepspeed",
            {**features, "target": "y", "task": "regression", "epochs": 15, "zero_stage": 2},
            **ON_TWO_WORKERS,
            runtime_env={"env_vars": {"TORCH_EXTENSIONS_DIR": str(EXTENSIONS)}},
        ),
    }
    horovod = submit(
        server, token, project.name, "horovod", {**features, "target": "label"}, **ON_TWO_WORKERS
    )
    results: dict[str, Any] = {}
    with server.client(token) as client:
        job = wait_for(lambda: client.get(horovod).json(), {"SUCCEEDED", "FAILED"}, WAIT)
        results["horovod"] = (job["status"], client.get(f"{horovod}/logs").text)
    for name, path in paths.items():
        outputs, run_dir = finish(server, token, project.name, path, timeout=WAIT)
        with server.client(token) as client:
            results[name] = (outputs, run_dir, client.get(f"{path}/logs").text)
    return results


@RAY_ONCE
def test_tensorflow_trains_on_two_workers_and_saves_a_savedmodel(trained: dict[str, Any]) -> None:
    outputs, run_dir, log = trained["tensorflow"]
    assert outputs["framework"] == "tensorflow"
    assert outputs["features"] == ["x", "z"]
    assert outputs["classes"] == [0, 1]
    assert (outputs["train_rows"], outputs["validation_rows"]) == (160, 40)
    assert outputs["metrics"]["accuracy"] >= 0.85
    assert Path(outputs["model_uri"]) == run_dir / "model"
    assert (run_dir / "model" / "saved_model.pb").exists()
    assert "no GPU granted; 2 workers train on CPU" in log
    epochs = _epochs(run_dir)
    assert [line["epoch"] for line in epochs] == list(range(1, 16))
    assert {line["workers"] for line in epochs} == {2}
    assert epochs[-1]["loss"] < epochs[0]["loss"] / 2
    # The SavedModel reads raw columns: what model-evaluate and serving load.
    model = model_files.load(outputs["model_uri"], outputs["framework"])
    frame = data.points()
    assert list(model.predict(pd.DataFrame({"x": [0.0, 19.0], "z": [0.0, 10.0]}))) == [0, 1]
    assert (model.predict(frame[["x", "z"]]) == frame["label"]).mean() >= 0.85


@RAY_ONCE
def test_deepspeed_zero_2_fits_a_regression_and_saves_torchscript(
    trained: dict[str, Any],
) -> None:
    outputs, run_dir, log = trained["deepspeed"]
    assert outputs["framework"] == "torchscript"
    assert Path(outputs["model_uri"]) == run_dir / "model.pt"
    assert set(outputs["metrics"]) == {"r2", "rmse"}
    assert outputs["metrics"]["r2"] > 0.8
    assert "classes" not in outputs
    assert "ZeRO stage 2, torch.optim.Adam (no optimizer offload)" in log
    assert f"compiled ops cached in {EXTENSIONS}" in log
    assert list(EXTENSIONS.glob("deepspeed_shm_comm/*.so"))
    epochs = _epochs(run_dir)
    assert len(epochs) == 15
    assert {line["workers"] for line in epochs} == {2}
    assert epochs[-1]["loss"] < epochs[0]["loss"] / 2
    extra = {"features": ""}
    model = torch.jit.load(outputs["model_uri"], _extra_files=extra)
    assert json.loads(extra["features"]) == ["x", "z"]
    frame = data.points()
    with torch.no_grad():
        predicted = model(torch.tensor(frame[["x", "z"]].to_numpy(dtype=np.float32)))
    assert r2_score(frame["y"], predicted[:, 0].numpy()) > 0.8


@RAY_ONCE
def test_horovod_without_horovod_fails_saying_what_to_install(trained: dict[str, Any]) -> None:
    status, log = trained["horovod"]
    assert status == "FAILED"
    assert "horovod: Horovod cannot be imported here (No module named 'horovod')" in log
    assert "pip install --no-build-isolation 'horovod[pytorch]==0.28.1'" in log
    assert "Ray Train V2 has no HorovodTrainer" in log
    assert "RAY_TRAIN_V2_ENABLED=0" in log
    assert "Traceback" not in log


@RAY_ONCE
@pytest.mark.parametrize(
    ("template", "params", "error"),
    [
        (
            "deepspeed",
            {"zero_stage": 3},
            "params.zero_stage: Input should be less than or equal to 2",
        ),
        ("horovod", {"hidden_sizes": [8, 0]}, "params.hidden_sizes.1: Input should be greater"),
        ("tensorflow", {"epochs": 0}, "params.epochs: Input should be greater than or equal to 1"),
    ],
)
def test_bad_parameters_are_refused_naming_them(
    server: Server, template: str, params: dict[str, Any], error: str
) -> None:
    project = create_project(server)
    with server.client(project.member.token) as client:
        response = client.post(
            f"/api/v1/projects/{project.name}/jobs",
            json={"template": template, "params": {"dataset": "d", "target": "y", **params}},
        )
    assert response.status_code == 422, response.text
    assert error in response.json()["detail"]
