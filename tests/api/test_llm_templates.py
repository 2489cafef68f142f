"""Templates of the LLM environment over HTTP: listed as such, submitted with that
environment's Python as the entrypoint's and `py_executable`, never on the warm runner; a
caller's own `py_executable` refused; a server without the environment saying how to get it."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from tests import llm
from tests.factories import create_project, create_user
from tests.fakes.backend import FakeBackend
from tests.server import Server, running_server
from tests.stacks import WITHOUT_RAY

pytestmark = WITHOUT_RAY


def _submit(server: Server, token: str, project: str, body: dict[str, Any]) -> Any:
    with server.client(token) as client:
        return client.post(f"/api/v1/projects/{project}/jobs", json=body)


def test_the_llm_templates_are_listed_in_the_llm_environment(server: Server) -> None:
    with server.client(create_user(server).token) as client:
        listed = {t["name"]: t for t in client.get("/api/v1/templates").json()}
    assert listed["llm-tiny"]["environment"] == "llm"
    assert listed["model-download"]["environment"] == "llm"
    assert listed["random-forest"]["environment"] == "default"


def test_a_job_of_the_llm_environment_runs_with_its_python(server: Server) -> None:
    python = llm.python()
    project = create_project(server)
    token = project.member.token
    body = {"template": "llm-tiny", "params": {"vocab_size": 280}, "resources": {"cpu": 0.1}}
    submitted = _submit(server, token, project.name, body)
    assert submitted.status_code == 201, submitted.text
    job = submitted.json()
    words = shlex.split(job["entrypoint"])
    assert words[:3] == [str(python), "-m", "jobs.llm_tiny"]
    assert words[words.index("--vocab-size") + 1] == "280"
    with server.client(token) as client:
        client.post(f"/api/v1/projects/{project.name}/jobs/{job['id']}/stop")
        # The warm runner runs in the cluster's own Python: not for these.
        task = {"template": "llm-tiny", "params": {}, "warm": True}
        warm = client.put(
            f"/api/v1/projects/{project.name}/pipelines/tiny", json={"tasks": {"make": task}}
        )
    assert warm.status_code == 422, warm.text
    assert warm.json()["detail"] == (
        "tasks.make.warm: a task in the llm environment runs as a Ray Job of its own"
    )


def test_a_callers_own_py_executable_is_refused(server: Server) -> None:
    project = create_project(server)
    body = {"entrypoint": "python -c 1", "runtime_env": {"py_executable": "/bin/sh"}}
    refused = _submit(server, project.member.token, project.name, body)
    assert refused.status_code == 422, refused.text
    assert "only the LLM environment's Python (FABRIC_LLM_PYTHON)" in refused.json()["detail"]


def test_a_server_without_the_llm_environment_says_how_to_get_it(tmp_path: Path) -> None:
    nowhere = tmp_path / "no-venv" / "bin" / "python"
    with running_server(
        tmp_path,
        f"sqlite:///{tmp_path / 'fabric.db'}",
        "sqlite",
        FakeBackend(tmp_path / "fake-cluster"),
        llm_python=nowhere,
    ) as server:
        project = create_project(server)
        body = {"template": "model-download", "params": {"model": "org/name"}}
        refused = _submit(server, project.member.token, project.name, body)
    assert refused.status_code == 409, refused.text
    assert refused.json()["detail"] == (
        "template model-download: the LLM environment is not installed: run `make install` or "
        f"set FABRIC_LLM_PYTHON (FABRIC_LLM_PYTHON: no {nowhere})"
    )
