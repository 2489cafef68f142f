"""The model registry through the API: versions copied with their checksum, signature and
lineage, aliases that jobs can read from storage, and clear refusals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fabric.runtime import model_files, model_store
from tests.factories import Project, create_project, create_user
from tests.serve_apps import models
from tests.server import Server


def _run_folder(server: Server, project: str, job_id: int) -> Path:
    """A run folder as a training job leaves it: the model, its outputs and its params."""
    run = Path(server.settings.storage_root) / "projects" / project / "runs" / f"job-{job_id}"
    run.mkdir(parents=True)
    path = models.sklearn(run, models.points())
    outputs = {
        "model_uri": str(path),
        "framework": "sklearn",
        "metrics": {"accuracy": 0.91},
        "features": models.FEATURES,
        "classes": [0, 1],
    }
    (run / "outputs.json").write_text(json.dumps(outputs))
    (run / "params.json").write_text(json.dumps({"dataset": "/data/points.parquet"}))
    return run


@pytest.fixture(scope="module")
def project(server: Server) -> Project:
    return create_project(server)


def _register(server: Server, project: Project, name: str, **body: Any) -> Any:
    with server.client(project.member.token) as client:
        return client.post(f"/api/v1/projects/{project.name}/models/{name}/versions", json=body)


def test_a_run_becomes_a_version_with_its_lineage(server: Server, project: Project) -> None:
    run = _run_folder(server, project.name, 41)
    first = _register(server, project, "churn", source=str(run), tags={"team": "growth"})
    assert first.status_code == 201, first.text
    second = _register(server, project, "churn", source="runs/job-41/model.joblib")
    assert second.status_code == 201, second.text
    version = first.json()
    assert (version["version"], second.json()["version"]) == (1, 2)
    assert version["framework"] == "sklearn"
    assert version["metrics"] == {"accuracy": 0.91}
    assert version["signature"] == {
        "inputs": [{"name": "x", "type": "number"}, {"name": "z", "type": "number"}],
        "output": {"type": "class", "classes": [0, 1]},
    }
    assert version["lineage"] == {
        "source": str(run / "model.joblib"),
        "job": 41,
        "pipeline_run": None,
        "dataset": "/data/points.parquet",
    }
    assert version["tags"] == {"team": "growth"}
    copied = Path(version["uri"])
    assert copied.parent.parts[-2:] == ("churn", "1")
    assert version["sha256"] == model_store.checksum(copied)
    loaded = model_files.load(copied, "sklearn")
    frame = models.points(5)
    assert list(loaded.predict(frame[models.FEATURES])) == list(
        model_files.load(run / "model.joblib", "sklearn").predict(frame[models.FEATURES])
    )


def test_aliases_move_and_jobs_find_them_in_storage(server: Server, project: Project) -> None:
    _run_folder(server, project.name, 42)
    for _ in range(2):
        assert _register(server, project, "ranker", source="42").status_code == 201
    base = f"/api/v1/projects/{project.name}/models/ranker"
    models_dir = Path(server.settings.storage_root) / "projects" / project.name / "models"
    with server.client(project.member.token) as client:
        assert client.put(f"{base}/aliases/production", json={"version": 1}).status_code == 200
        assert model_files.locate(models_dir, "ranker@production").name == "1"
        moved = client.put(f"{base}/aliases/production", json={"version": 2})
        assert moved.json()["aliases"] == ["production"]
        assert client.get(f"{base}/versions/production").json()["version"] == 2
        assert model_files.locate(models_dir, "ranker@production").name == "2"
        assert client.get(base).json()["aliases"] == {"production": 2}
        assert client.delete(f"{base}/aliases/production").status_code == 204
        missing = client.get(f"{base}/versions/production")
        assert missing.status_code == 404
        assert "no alias 'production'" in missing.json()["detail"]
        with pytest.raises(model_files.ModelError, match="no alias 'production'"):
            model_files.locate(models_dir, "ranker@production")
        assert client.get(f"{base}/versions/latest").json()["version"] == 2
        refused = client.put(f"{base}/aliases/staging", json={"version": 9})
        assert refused.status_code == 404 and "no version 9" in refused.json()["detail"]
    with server.client(project.viewer.token) as client:
        assert client.put(f"{base}/aliases/x", json={"version": 1}).status_code == 403
        assert client.get(base).status_code == 200


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"source": "/etc/hostname"}, 422, "outside this project's storage"),
        ({"source": "../../users"}, 422, "outside this project's storage"),
        ({"source": "runs/none/model.joblib"}, 422, "no model at"),
        ({"source": "runs/job-43", "framework": "caffe"}, 422, "unknown framework 'caffe'"),
        ({"source": "runs/job-43", "framework": "custom"}, 422, "needs entry"),
    ],
)
def test_bad_registrations_say_what_to_fix(
    server: Server, project: Project, body: dict[str, Any], status: int, message: str
) -> None:
    run = Path(server.settings.storage_root) / "projects" / project.name / "runs" / "job-43"
    if not run.exists():
        _run_folder(server, project.name, 43)
    response = _register(server, project, "bad", **body)
    assert response.status_code == status, response.text
    assert message in response.json()["detail"]
    with server.client(project.member.token) as client:
        assert client.get(f"/api/v1/projects/{project.name}/models/bad").status_code == 404


def test_a_bad_name_and_an_outsider_are_refused(server: Server, project: Project) -> None:
    _run_folder(server, project.name, 44)
    bad = _register(server, project, "-bad", source="44")
    assert bad.status_code == 422 and "model name" in bad.json()["detail"]
    outsider = create_user(server, prefix="outsider")
    with server.client(outsider.token) as client:
        response = client.post(
            f"/api/v1/projects/{project.name}/models/x/versions", json={"source": "44"}
        )
    assert response.status_code == 404
