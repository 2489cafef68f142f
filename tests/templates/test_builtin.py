"""The built-in templates run for real: as jobs on the session's Ray head, and locally."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import joblib
import pandas as pd

from fabric.services import templates
from tests.factories import create_project
from tests.jobs import wait_for
from tests.server import Server

TINY = {"cpu": 0.5}


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


def _run(server: Server, token: str, project: str, template: str, params: dict[str, Any]) -> Any:
    """Submit the template as a job, wait for its end, return the job and its outputs."""
    with server.client(token) as client:
        response = client.post(
            f"/api/v1/projects/{project}/jobs",
            json={"template": template, "params": params, "resources": TINY},
        )
        assert response.status_code == 201, response.text
        path = f"/api/v1/projects/{project}/jobs/{response.json()['id']}"
        job = wait_for(lambda: client.get(path).json(), {"SUCCEEDED", "FAILED", "STOPPED"})
        logs = client.get(f"{path}/logs").text
    assert job["status"] == "SUCCEEDED", f"{job['message']}\n{logs}"
    run_dir = (
        Path(server.settings.storage_root) / "projects" / project / "runs" / f"job-{job['id']}"
    )
    return json.loads((run_dir / "outputs.json").read_text()), run_dir


def test_import_a_csv_then_train_a_forest_on_it(server: Server, tmp_path: Path) -> None:
    project = create_project(server)
    token = project.member.token
    source = tmp_path / "points.csv"
    _frame().to_csv(source, index=False)

    imported, _ = _run(
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

    trained, run_dir = _run(
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
    trained, _ = _run(
        server,
        project.member.token,
        project.name,
        "random-forest",
        {"dataset": str(dataset), "target": "y", "task": "regression", "n_estimators": 20},
    )
    assert set(trained["metrics"]) == {"r2", "rmse"}
    assert trained["metrics"]["r2"] > 0.95


def _local(module: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={"PATH": str(Path(sys.executable).parent)},
    )


def test_json_lines_import_runs_outside_fabric(tmp_path: Path) -> None:
    """`python -m jobs.data_import` on a laptop: folders under ./fabric-local."""
    source = tmp_path / "rows.jsonl"
    source.write_text('{"a": 1, "b": "x"}\n{"a": 2, "b": "y"}\n')
    result = _local("jobs.data_import", "--source", str(source), "--name", "rows", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    dataset = tmp_path / "fabric-local" / "project" / "datasets" / "rows.parquet"
    assert pd.read_parquet(dataset).to_dict("records") == [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]
    [manifest] = (tmp_path / "fabric-local" / "runs").glob("data-import-*/outputs.json")
    assert json.loads(manifest.read_text())["rows"] == 2


def test_a_bad_flag_fails_naming_it(tmp_path: Path) -> None:
    result = _local(
        "jobs.random_forest", "--dataset", "d", "--target", "y", "--seed", "x", cwd=tmp_path
    )
    assert result.returncode == 1
    assert "random-forest: seed: Input should be a valid integer" in result.stderr


def test_templates_import_no_heavy_library_at_listing() -> None:
    """The server imports templates to list them: pandas and scikit-learn wait for `run`."""
    code = (
        "import sys, jobs.data_import, jobs.random_forest; "
        "print(sorted({'pandas', 'sklearn', 'pyarrow', 'ray'} & set(sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_every_template_is_named_after_its_module() -> None:
    """`jobs/data_import.py` is `data-import`: the name says which module runs."""
    found = templates.list_all()
    assert {"data-import", "random-forest"} <= {f.template.name for f in found}
    for entry in found:
        assert entry.module == "jobs." + entry.template.name.replace("-", "_")
