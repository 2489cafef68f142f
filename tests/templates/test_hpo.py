"""The hpo template: searches on Ray Tune as jobs on the session's Ray head, each algorithm
and scheduler once, over NNI-style trial code; that trial code also runs on its own."""

from __future__ import annotations

import itertools
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from jobs import _hpo_example
from tests.factories import create_project
from tests.server import Server
from tests.stacks import RAY_ONCE
from tests.templates.runs import finish, submit

# NNI trial code as NNI users write it: `import nni`, argparse defaults merged with the
# tuned values, a result per step and a final one. Its optimum is x=0.7.
NNI_TRIAL = """
import argparse

import nni
from nni.utils import merge_parameter

parser = argparse.ArgumentParser()
parser.add_argument("--x", type=float, default=0.0)
parser.add_argument("--steps", type=int, default=3)
args = merge_parameter(parser.parse_args(), nni.get_next_parameter())
ids = {"sequence": nni.get_sequence_id(), "trial": nni.get_trial_id()}
for step in range(1, args.steps + 1):
    nni.report_intermediate_result({"default": -((args.x - 0.7) ** 2) - 0.5**step, **ids})
nni.report_final_result({"default": -((args.x - 0.7) ** 2), **ids})
"""

# Each trial takes a sliver of the head's two CPUs, so that every search runs at once.
SLIVER = {"resources": {"cpu": 0.1}, "workers": 2, "worker_resources": {"cpu": 0.15}}
X = {"x": {"_type": "uniform", "_value": [0, 1]}}
LR = {"lr": {"_type": "loguniform", "_value": [1e-4, 1e-1]}}
ACTIVATION = {"activation": {"_type": "choice", "_value": ["relu", "tanh"]}}
ONE_STEP = ["--iterations", "1"]


@pytest.fixture(scope="module")
def searches(server: Server, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One job per algorithm and scheduler, submitted together so that they overlap:
    name to `(outputs, run folder, table of trials)`."""
    project = create_project(server)
    token = project.member.token
    script = tmp_path_factory.mktemp("trial") / "trial.py"
    script.write_text(NNI_TRIAL)
    requests = {
        "asha": {
            "search_space": X,
            "trial": str(script),
            "trial_args": ["--steps", "9"],
            "scheduler": "asha",
            "max_trials": 8,
            "max_iterations": 10,
        },
        "optuna": {
            "search_space": {**X, **LR},
            "algorithm": "optuna",
            "max_trials": 12,
            "trial_args": ONE_STEP,
        },
        "hyperopt": {
            "search_space": {**X, **ACTIVATION},
            "algorithm": "hyperopt",
            "max_trials": 12,
            "trial_args": ONE_STEP,
        },
        "grid": {
            "search_space": {**ACTIVATION, "layers": {"_type": "randint", "_value": [2, 5]}},
            "algorithm": "grid",
            "max_trials": 20,
            "trial_args": ONE_STEP,
        },
        "pbt": {
            "search_space": X,
            "scheduler": "pbt",
            "max_trials": 4,
            "perturbation_interval": 2,
            "trial_args": ["--iterations", "12", "--seconds", "0.05"],
        },
    }
    paths = {
        name: submit(server, token, project.name, "hpo", params, **SLIVER)
        for name, params in requests.items()
    }
    found = {}
    for name, path in paths.items():
        outputs, run_dir = finish(server, token, project.name, path)
        found[name] = outputs, run_dir, pd.read_csv(outputs["tables"]["trials"])
    return found


@RAY_ONCE
def test_asha_stops_weak_trials_of_unchanged_nni_code(searches: dict[str, Any]) -> None:
    outputs, run_dir, table = searches["asha"]
    assert len(table) == 8
    assert list(pd.read_parquet(outputs["trials_uri"])["trial_id"]) == list(table["trial_id"])
    # A full trial reports nine steps and its final result; ASHA cut some after fewer.
    assert table["iterations"].max() == 10
    assert (table["iterations"] < 10).any()
    assert outputs["metrics"]["trial_iterations"] == table["iterations"].sum() < 8 * 10
    best = table.loc[table["default"].idxmax()]
    assert outputs["best_config"] == {"x": best["x"]}
    assert abs(best["x"] - 0.7) < 0.2
    assert outputs["best_score"] == pytest.approx(-((best["x"] - 0.7) ** 2))
    assert outputs["best_trial_id"] == best["trial_id"]
    # NNI's calls answered from Tune: each trial knows its id and its place in the search.
    assert list(table["trial"]) == list(table["trial_id"])
    assert sorted(table["sequence"]) == list(range(8))
    progress = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [m["trials"] for m in progress] == list(range(1, 9))
    assert progress[-1]["best"] == pytest.approx(outputs["best_score"])


@RAY_ONCE
@pytest.mark.parametrize("algorithm", ["optuna", "hyperopt"])
def test_bayesian_searches_come_near_the_optimum(searches: dict[str, Any], algorithm: str) -> None:
    outputs, _, table = searches[algorithm]
    assert len(table) == 12
    best = outputs["best_config"]
    assert outputs["best_score"] == pytest.approx(_hpo_example.score(best))
    assert outputs["best_score"] == pytest.approx(table["default"].max())
    assert outputs["best_score"] > 0.9
    assert abs(best["x"] - 0.3) < 0.3
    if "lr" in best:
        assert 1e-4 <= best["lr"] <= 1e-1
        assert abs(math.log10(best["lr"]) + 2) < 1
    if "activation" in best:
        assert best["activation"] == "relu"


@RAY_ONCE
def test_grid_tries_every_point_once_and_finds_the_best(searches: dict[str, Any]) -> None:
    outputs, _, table = searches["grid"]
    points = set(itertools.product(["relu", "tanh"], [2, 3, 4]))
    assert len(table) == len(points)
    assert set(zip(table["activation"], table["layers"], strict=True)) == points
    assert outputs["best_config"] == {"activation": "relu", "layers": 3}
    assert outputs["best_score"] == pytest.approx(1.0)


@RAY_ONCE
def test_pbt_continues_weak_trials_from_strong_ones_checkpoints(
    searches: dict[str, Any],
) -> None:
    outputs, _, table = searches["pbt"]
    assert len(table) == 4
    policy = Path(outputs["experiment_uri"]) / "pbt_global.txt"
    assert policy.read_text().strip(), "PBT never exploited a trial"
    # Resumed from a checkpoint, a trial goes on from the iteration saved there: its steps
    # and Tune's iterations (twelve steps and the final result) still agree.
    assert list(table["iterations"]) == [13] * 4
    assert list(table["iteration"]) == [12] * 4
    assert outputs["best_score"] == pytest.approx(_hpo_example.score(outputs["best_config"]))


def test_the_example_trial_runs_on_its_own(tmp_path: Path) -> None:
    """Outside Tune the same calls read FABRIC_TRIAL_PARAMETERS and write metrics.jsonl."""
    env = {
        "PATH": os.environ["PATH"],
        "FABRIC_TRIAL_PARAMETERS": json.dumps({"x": 0.5, "activation": "tanh"}),
        "FABRIC_RUN_DIR": str(tmp_path),
    }
    result = subprocess.run(
        [sys.executable, "-m", "jobs._hpo_example", "--iterations", "3"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    expected = _hpo_example.score({"x": 0.5, "activation": "tanh"})
    assert "trial STANDALONE (0)" in result.stdout
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [1, 2, 3, 4]
    assert [line.get("final") for line in lines] == [None, None, None, True]
    assert lines[-1]["default"] == pytest.approx(expected)
    assert lines[0]["default"] == pytest.approx(expected - 0.5)


@RAY_ONCE
@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"search_space": {"lr": {"_type": "loguniform", "_value": [0, 1]}}},
            "params.search_space.lr: Value error, loguniform needs a low bound above 0",
        ),
        (
            {"search_space": {"n": {"_type": "randint", "_value": [1.5, 3]}}},
            "params.search_space.n: Value error, randint takes two integers",
        ),
        (
            {"search_space": X, "algorithm": "grid"},
            "grid search needs choice, randint or quantized types; x has none",
        ),
        (
            {"search_space": X, "algorithm": "optuna", "scheduler": "pbt"},
            "pbt picks its own configurations",
        ),
    ],
)
def test_a_bad_search_is_refused_naming_why(
    server: Server, params: dict[str, Any], message: str
) -> None:
    project = create_project(server)
    with server.client(project.member.token) as client:
        response = client.post(
            f"/api/v1/projects/{project.name}/jobs", json={"template": "hpo", "params": params}
        )
    assert response.status_code == 422, response.text
    assert message in response.json()["detail"]


@pytest.mark.parametrize(
    ("workers", "trial", "message"),
    [
        ('{"count": 0, "resources": {}}', "builtin:example", "hpo: the job has no workers"),
        ("", "missing.py", "hpo: trial file missing.py not found"),
        ("", "no_such_package.train", "hpo: trial module no_such_package.train cannot"),
    ],
)
def test_a_search_without_workers_or_trial_code_exits_naming_it(
    tmp_path: Path, workers: str, trial: str, message: str
) -> None:
    env = {"PATH": os.environ["PATH"], "FABRIC_WORKERS": workers}
    result = subprocess.run(
        [sys.executable, "-m", "jobs.hpo", "--search-space", json.dumps(X), "--trial", trial],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert message in result.stderr
