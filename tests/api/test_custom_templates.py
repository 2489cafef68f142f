"""Templates a project registers: versions that keep their code, parameters checked by their
JSON Schema, and publishing to other projects, with jobs on the session's real Ray head."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import httpx

from tests.factories import create_project
from tests.jobs import TERMINAL, wait_for
from tests.server import Server

TRAIN = """
import argparse
from fabric import runtime

parser = argparse.ArgumentParser()
parser.add_argument("--lr", type=float)
parser.add_argument("--epochs", type=int)
args = parser.parse_args()
runtime.write_outputs(code=CODE, lr=args.lr, epochs=args.epochs)
"""
SCHEMA = {
    "type": "object",
    "properties": {
        "lr": {"type": "number", "exclusiveMinimum": 0, "description": "learning rate"},
        "epochs": {"type": "integer", "minimum": 1, "default": 2},
    },
    "required": ["lr"],
    "additionalProperties": False,
}


def _upload_code(client: httpx.Client, project: str, code: str) -> None:
    """The project's package train.zip, holding a train.py that reports `code`."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("train.py", f"CODE = {code!r}\n{TRAIN}")
    uploaded = client.put(
        f"/api/v1/projects/{project}/packages/train.zip", content=buffer.getvalue()
    )
    uploaded.raise_for_status()


def _register(client: httpx.Client, project: str, **spec: Any) -> httpx.Response:
    body = {
        "name": "trainer",
        "command": "python train.py",
        "parameters": SCHEMA,
        "resources": {"cpu": 0.25},
        "runtime_env": {"working_dir": "gcs://train.zip"},
        **spec,
    }
    return client.post(f"/api/v1/projects/{project}/templates", json=body)


def _submit(client: httpx.Client, project: str, template: str, **params: Any) -> httpx.Response:
    return client.post(
        f"/api/v1/projects/{project}/jobs", json={"template": template, "params": params}
    )


def _outputs(server: Server, client: httpx.Client, project: str, job_id: int) -> dict[str, Any]:
    path = f"/api/v1/projects/{project}/jobs/{job_id}"
    job = wait_for(lambda: client.get(path).json(), TERMINAL)
    assert job["status"] == "SUCCEEDED", client.get(f"{path}/logs").text
    run_dir = Path(server.settings.storage_root) / "projects" / project / "runs" / f"job-{job_id}"
    return json.loads((run_dir / "outputs.json").read_text())


def test_versions_keep_their_code_and_parameters_are_checked(server: Server) -> None:
    project = create_project(server)
    name = project.name
    with server.client(project.member.token) as client:
        _upload_code(client, name, "one")
        first = _register(client, name, description="trains")
        _upload_code(client, name, "two")
        second = _register(client, name)
        assert (first.status_code, second.status_code) == (201, 201), first.text
        pinned = _submit(client, name, f"{name}/trainer@1", lr=0.1)
        newest = _submit(client, name, f"{name}/trainer", lr=0.5, epochs=4)
        assert pinned.status_code == newest.status_code == 201, pinned.text
        negative = _submit(client, name, f"{name}/trainer", lr=-1)
        missing = _submit(client, name, f"{name}/trainer", epochs=3)
        unknown = _submit(client, name, f"{name}/trainer@9", lr=1)
        listed = client.get(f"/api/v1/projects/{name}/templates").json()
        pinned_outputs = _outputs(server, client, name, pinned.json()["id"])
        newest_outputs = _outputs(server, client, name, newest.json()["id"])

    assert (first.json()["version"], second.json()["version"]) == (1, 2)
    assert first.json()["name"] == f"{name}/trainer" and not first.json()["published"]
    assert pinned.json()["template"] == f"{name}/trainer@1"
    assert pinned.json()["entrypoint"] == "python train.py --lr 0.1 --epochs 2"
    assert pinned.json()["resources"] == {"cpu": 0.25}
    assert pinned_outputs == {"code": "one", "lr": 0.1, "epochs": 2}
    assert newest.json()["template"] == f"{name}/trainer@2"
    assert newest_outputs == {"code": "two", "lr": 0.5, "epochs": 4}
    assert negative.status_code == missing.status_code == unknown.status_code == 422
    assert "params.lr: -1 is less than or equal to the minimum of 0" in negative.json()["detail"]
    assert "params: 'lr' is a required property" in missing.json()["detail"]
    assert "template: template" in unknown.json()["detail"]
    assert [(t["name"], t["version"]) for t in listed] == [
        (f"{name}/trainer", 2),
        (f"{name}/trainer", 1),
    ]


def test_published_versions_run_in_other_projects(server: Server) -> None:
    owner_project, other = create_project(server), create_project(server)
    ref = f"{owner_project.name}/trainer"
    with server.client(owner_project.member.token) as member:
        _upload_code(member, owner_project.name, "shared")
        _register(member, owner_project.name).raise_for_status()
        by_member = member.patch(
            f"/api/v1/projects/{owner_project.name}/templates/trainer/versions/1",
            json={"published": True},
        )
    with server.client(other.member.token) as outsider:
        hidden = outsider.get(f"/api/v1/templates/{ref}")
        refused = _submit(outsider, other.name, ref, lr=0.2)
    with server.client(owner_project.owner.token) as owner:
        published = owner.patch(
            f"/api/v1/projects/{owner_project.name}/templates/trainer/versions/1",
            json={"published": True},
        )
    with server.client(other.member.token) as outsider:
        shown = outsider.get(f"/api/v1/templates/{ref}")
        listed = [t["name"] for t in outsider.get("/api/v1/templates").json()]
        used = _submit(outsider, other.name, ref, lr=0.2)
        assert used.status_code == 201, used.text
        outputs = _outputs(server, outsider, other.name, used.json()["id"])

    assert by_member.status_code == 403
    assert hidden.status_code == 404
    assert refused.status_code == 422
    assert "not found, or not published to your projects" in refused.json()["detail"]
    assert published.status_code == 200 and published.json()["published"]
    assert shown.status_code == 200 and shown.json()["parameters"] == SCHEMA
    assert ref in listed and "data-import" in listed
    assert outputs == {"code": "shared", "lr": 0.2, "epochs": 2}
    # The job ran the template's code from a copy in its own project's packages.
    packages = Path(server.settings.storage_root) / "projects" / other.name / "packages"
    assert [p.name for p in packages.glob("*.zip")] == [
        f"template_{owner_project.name}_trainer_v1_train.zip"
    ]


def test_bad_registrations_say_what_to_fix(server: Server) -> None:
    project = create_project(server)
    with server.client(project.viewer.token) as viewer:
        by_viewer = _register(viewer, project.name, runtime_env={})
    with server.client(project.member.token) as client:
        results = [
            _register(client, project.name, **{"runtime_env": {}, **spec})
            for spec in (
                {"parameters": {"type": "object", "properties": {"x": {"type": "numbr"}}}},
                {"parameters": {"type": "array"}},
                {"parameters": {"type": "object", "properties": {"bad-name": {}}}},
                {"name": "Trainer"},
                {"runtime_env": {"working_dir": "gcs://never-uploaded.zip"}},
                {"published": True},
            )
        ]
        listed = client.get(f"/api/v1/projects/{project.name}/templates").json()
    assert by_viewer.status_code == 403
    assert [r.status_code for r in results] == [422, 422, 422, 422, 422, 403]
    details = [r.json()["detail"] for r in results]
    assert details[0].startswith("parameters: not a valid JSON Schema")
    assert '"type": "object"' in details[1]
    assert "bad-name: a parameter becomes a --flag" in details[2]
    assert details[3].startswith("name: lowercase letters")
    assert "package 'never-uploaded.zip' was not uploaded" in details[4]
    assert listed == [], "nothing is stored from a refused registration"
