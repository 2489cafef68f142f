"""The Ray Train templates run for real: XGBoost, LightGBM and PyTorch on two workers each."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import lightgbm
import numpy as np
import pandas as pd
import pytest
import torch
import xgboost
from sklearn.metrics import r2_score

from fabric import runtime
from fabric.sdk.client import Client
from fabric.sdk.packages import package
from tests.factories import create_project
from tests.server import Server
from tests.stacks import RAY_ONCE
from tests.templates import data
from tests.templates.runs import finish, local, submit

QUARTER = {"cpu": 0.25}
ON_TWO_WORKERS = {"resources": QUARTER, "workers": 2, "worker_resources": QUARTER}
# Ray Train starts slowly on two busy cores, and the jobs queue for the head's CPUs.
WAIT = 600
pytestmark = pytest.mark.timeout(1200)

# The user's own training function, as a module in the job's working folder.
USER_CODE = """
import tempfile
from pathlib import Path

import ray.train
import ray.train.torch
import torch


def fit(config):
    model = ray.train.torch.prepare_model(torch.nn.Linear(1, 1))
    context = ray.train.get_context()
    for epoch in range(1, config["epochs"] + 1):
        metrics = {"epoch": epoch, "world_size": context.get_world_size(), "scale": config["scale"]}
        with tempfile.TemporaryDirectory() as folder:
            checkpoint = None
            if context.get_world_rank() == 0:
                torch.jit.script(model.module).save(str(Path(folder) / "model.pt"))
                checkpoint = ray.train.Checkpoint.from_directory(folder)
            ray.train.report(metrics, checkpoint=checkpoint)
"""


def _reported(run_dir: Path) -> list[dict[str, Any]]:
    return runtime.read_metrics(run_dir)


@pytest.fixture(scope="module")
def trained(server: Server, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The three templates' jobs submitted together (PyTorch twice: the built-in MLP and the
    user's own function), then a PyTorch job resuming the first: name to (outputs, folder)."""
    folder = tmp_path_factory.mktemp("train")
    points = folder / "points.parquet"
    data.points().to_parquet(points)
    project = create_project(server)
    token = project.member.token
    features = {"dataset": str(points), "features": ["x", "z"]}
    # First, since the job resuming it waits for it.
    mlp = {**features, "target": "label", "learning_rate": 0.01}
    first = submit(server, token, project.name, "pytorch", {**mlp, "epochs": 3}, **ON_TWO_WORKERS)
    paths = {
        "xgboost": submit(
            server,
            token,
            project.name,
            "xgboost",
            {**features, "target": "label", "num_boost_round": 20},
            **ON_TWO_WORKERS,
        ),
        "lightgbm": submit(
            server,
            token,
            project.name,
            "lightgbm",
            {**features, "target": "y", "task": "regression", "num_boost_round": 40}
            | {"min_data_in_leaf": 5},
            **ON_TWO_WORKERS,
        ),
    }
    code = folder / "code"
    code.mkdir()
    (code / "usertrain.py").write_text(USER_CODE)
    zipped = package(code, folder)
    working_dir = {"working_dir": Client(server.url, token).upload_package(project.name, zipped)}
    paths["user-code"] = submit(
        server,
        token,
        project.name,
        "pytorch",
        {"train_module": "usertrain", "train_function": "fit"}
        | {"config": {"epochs": 2, "scale": 3.5}},
        runtime_env=working_dir,
        **ON_TWO_WORKERS,
    )
    results = {"pytorch": finish(server, token, project.name, first, timeout=WAIT)}
    with server.client(token) as client:
        results["pytorch-log"] = client.get(f"{first}/logs").text
    resumed = {**mlp, "epochs": 5, "resume_from": str(results["pytorch"][1])}
    paths["pytorch-resumed"] = submit(
        server, token, project.name, "pytorch", resumed, **ON_TWO_WORKERS
    )
    for name, path in paths.items():
        results[name] = finish(server, token, project.name, path, timeout=WAIT)
    return results


@RAY_ONCE
def test_xgboost_boosts_on_two_workers_and_saves_a_booster(trained: dict[str, Any]) -> None:
    outputs, run_dir = trained["xgboost"]
    assert outputs["framework"] == "xgboost"
    assert outputs["features"] == ["x", "z"]
    assert Path(outputs["model_uri"]) == run_dir / "model.ubj"
    assert outputs["metrics"]["accuracy"] >= 0.85
    assert outputs["classes"] == [0, 1]
    booster = xgboost.Booster(model_file=outputs["model_uri"])
    assert booster.num_boosted_rounds() == 20
    probability = booster.predict(
        xgboost.DMatrix(pd.DataFrame({"x": [0.0, 19.0], "z": [0.0, 10.0]}))
    )
    assert list(probability > 0.5) == [False, True]
    # Each round's validation loss reached the job's metrics as it was reported.
    rounds = [
        line["validation-logloss"] for line in _reported(run_dir) if "validation-logloss" in line
    ]
    assert len(rounds) >= 20
    assert rounds[-1] < rounds[0]
    assert (run_dir / "ray-train").is_dir()


@RAY_ONCE
def test_lightgbm_fits_a_regression_on_two_workers(trained: dict[str, Any]) -> None:
    outputs, run_dir = trained["lightgbm"]
    assert outputs["framework"] == "lightgbm"
    assert Path(outputs["model_uri"]) == run_dir / "model.txt"
    assert set(outputs["metrics"]) == {"r2", "rmse"}
    assert outputs["metrics"]["r2"] > 0.8
    assert (outputs["train_rows"], outputs["validation_rows"]) == (160, 40)
    booster = lightgbm.Booster(model_file=outputs["model_uri"])
    frame = data.points()
    assert r2_score(frame["y"], booster.predict(frame[["x", "z"]])) > 0.8
    rmse = [line["validation-rmse"] for line in _reported(run_dir) if "validation-rmse" in line]
    assert len(rmse) >= 40 and rmse[-1] < rmse[0]


@RAY_ONCE
def test_pytorch_trains_an_mlp_with_ddp_and_saves_torchscript(trained: dict[str, Any]) -> None:
    outputs, run_dir = trained["pytorch"]
    assert outputs["framework"] == "torchscript"
    assert outputs["epochs"] == 3
    epochs = [line for line in _reported(run_dir) if "epoch" in line]
    assert [line["epoch"] for line in epochs] == [1, 2, 3]
    assert epochs[-1]["loss"] < epochs[0]["loss"]
    # No GPU here: the workers train on CPU, and the log says so.
    assert "pytorch: no GPU granted; 2 workers train on CPU" in trained["pytorch-log"]
    model = torch.jit.load(outputs["model_uri"])
    frame = data.points()
    with torch.no_grad():
        logits = model(torch.tensor(frame[["x", "z"]].to_numpy(dtype=np.float32)))
    assert logits.shape == (200, 2)
    assert (logits.argmax(dim=1).numpy() == frame["label"].to_numpy()).mean() >= 0.8
    checkpoint = Path(outputs["checkpoint_uri"])
    assert checkpoint.is_relative_to(run_dir / "ray-train")
    assert torch.load(checkpoint / "state.pt", weights_only=True)["epoch"] == 3


@RAY_ONCE
def test_pytorch_resumes_from_an_earlier_runs_checkpoint(trained: dict[str, Any]) -> None:
    _, first_dir = trained["pytorch"]
    outputs, run_dir = trained["pytorch-resumed"]
    epochs = [line for line in _reported(run_dir) if "epoch" in line]
    # The epoch counter goes on from the checkpoint's, and so does the loss.
    assert [line["epoch"] for line in epochs] == [4, 5]
    first_epochs = [line for line in _reported(first_dir) if "epoch" in line]
    assert epochs[0]["loss"] < first_epochs[0]["loss"]
    assert outputs["epochs"] == 5
    checkpoint = Path(outputs["checkpoint_uri"])
    assert checkpoint.is_relative_to(run_dir)
    assert torch.load(checkpoint / "state.pt", weights_only=True)["epoch"] == 5
    assert torch.jit.load(outputs["model_uri"]) is not None


@RAY_ONCE
def test_pytorch_runs_the_users_training_function(trained: dict[str, Any]) -> None:
    """The user's module from the job's working dir, with the config the job was given."""
    outputs, run_dir = trained["user-code"]
    assert outputs["metrics"] == {"epoch": 2.0, "world_size": 2.0, "scale": 3.5}
    assert outputs["framework"] == "torchscript"
    assert Path(outputs["model_uri"]) == run_dir / "model.pt"
    assert torch.jit.load(outputs["model_uri"])(torch.ones(1, 1)).shape == (1, 1)
    assert Path(outputs["checkpoint_uri"], "model.pt").exists()
    assert [line["epoch"] for line in _reported(run_dir)] == [1, 2]


def test_a_train_template_without_workers_exits_naming_it(tmp_path: Path) -> None:
    dataset = tmp_path / "d.parquet"
    data.points().to_parquet(dataset)
    result = subprocess.run(
        [sys.executable, "-m", "jobs.xgboost", "--dataset", str(dataset), "--target", "label"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={
            "PATH": str(Path(sys.executable).parent),
            "FABRIC_WORKERS": '{"count": 0, "resources": {}}',
        },
    )
    assert result.returncode == 1
    assert "xgboost: the job has no Ray workers to train on" in result.stderr


def test_pytorch_needs_a_dataset_or_the_users_module(tmp_path: Path) -> None:
    result = local("jobs.pytorch", "--epochs", "2", cwd=tmp_path)
    assert result.returncode == 1
    assert "give dataset and target for the built-in MLP, or train_module" in result.stderr
