"""llm endpoint specs through the API on the fake backend: what the server refuses before
anything is stored or reaches Serve (the kind of model, the quota, no LLM environment), and
the Serve application an accepted one becomes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.factories import Project, create_project
from tests.server import Server
from tests.stacks import WITHOUT_RAY

pytestmark = WITHOUT_RAY
LLM = {"kind": "llm", "versions": [{"model": "tiny"}], "cpu": 1}


def _folder(root: Path, files: dict[str, Any]) -> Path:
    root.mkdir(parents=True)
    for name, content in files.items():
        data = json.dumps(content) if isinstance(content, dict) else content
        (root / name).write_text(data)
    return root


@pytest.fixture(scope="module")
def project(server: Server) -> Project:
    """A project with an llm version `tiny`, its adapter `tone`, and a classic `churn`; the
    folders hold the files the registry checks for, which nothing here loads."""
    project = create_project(server)
    incoming = Path(server.settings.storage_root) / "projects" / project.name / "incoming"
    _folder(
        incoming / "tiny",
        {
            "config.json": {"model_type": "llama"},
            "tokenizer.json": {},
            "tokenizer_config.json": {"chat_template": "{{ messages }}"},
            "model.safetensors": "weights",
        },
    )
    _folder(
        incoming / "tone",
        {"adapter_config.json": {"peft_type": "LORA"}, "adapter_model.safetensors": "w"},
    )
    (incoming / "churn.joblib").write_bytes(b"not read")
    base = f"/api/v1/projects/{project.name}/models"
    with server.client(project.member.token) as client:
        for name, body in (
            ("tiny", {"source": "incoming/tiny", "framework": "llm"}),
            ("tone", {"source": "incoming/tone", "framework": "lora", "base": "tiny@1"}),
            ("churn", {"source": "incoming/churn.joblib"}),
        ):
            client.post(f"{base}/{name}/versions", json=body).raise_for_status()
    return project


@pytest.fixture
def llm_python(server: Server) -> Iterator[str]:
    """The fake cluster has an LLM environment while the test runs."""
    fake = server.fake
    assert fake is not None
    fake.llm_python = "/opt/vllm/bin/python"
    yield fake.llm_python
    fake.llm_python = None


def _apply(server: Server, project: Project, name: str, spec: dict[str, Any]) -> Any:
    with server.client(project.member.token) as client:
        return client.put(f"/api/v1/projects/{project.name}/endpoints/{name}", json=spec)


def _absent(server: Server, project: Project, name: str) -> bool:
    with server.client(project.member.token) as client:
        found = client.get(f"/api/v1/projects/{project.name}/endpoints/{name}")
    return found.status_code == 404


@pytest.mark.usefixtures("llm_python")
@pytest.mark.parametrize(
    ("name", "spec", "message"),
    [
        ("classic-of-llm", {"versions": [{"model": "tiny"}]}, "served by vLLM on an llm endpoint"),
        ("llm-of-classic", {**LLM, "versions": [{"model": "churn"}]}, "a model of framework llm"),
        ("llm-of-adapter", {**LLM, "versions": [{"model": "tone"}]}, "serve its base tiny@1"),
    ],
)
def test_each_kind_serves_its_own_models(
    server: Server, project: Project, name: str, spec: dict[str, Any], message: str
) -> None:
    refused = _apply(server, project, name, spec)
    assert refused.status_code == 422, refused.text
    assert message in refused.json()["detail"]
    assert _absent(server, project, name)


@pytest.mark.usefixtures("llm_python")
def test_the_quota_refuses_an_engine_that_does_not_fit(server: Server, project: Project) -> None:
    with server.admin() as admin:
        admin.put(
            f"/api/v1/projects/{project.name}/quotas",
            json={"resource": "cpu", "kind": "concurrent", "limit": 2},
        ).raise_for_status()
    refused = _apply(server, project, "big", {**LLM, "cpu": 1.5, "replicas": 2})
    assert refused.status_code == 409, refused.text
    assert "concurrent quota on cpu is 2" in refused.json()["detail"]
    assert _absent(server, project, "big")


def test_without_an_llm_environment_it_is_refused_at_once(server: Server, project: Project) -> None:
    refused = _apply(server, project, "nowhere", LLM)
    assert refused.status_code == 409
    assert "FABRIC_LLM_PYTHON" in refused.json()["detail"]
    assert _absent(server, project, "nowhere")


def test_an_accepted_one_runs_in_the_llm_environment(
    server: Server, project: Project, llm_python: str
) -> None:
    fake = server.fake
    assert fake is not None
    applied = _apply(server, project, "chat", {**LLM, "engine": {"max_model_len": 512}})
    assert applied.status_code == 201, applied.text
    app = fake.applications[f"{project.name}.chat"]["deployed_app_config"]
    assert app["import_path"] == "serve_apps.llm:app_builder"
    assert app["runtime_env"]["py_executable"] == llm_python
    assert "/models/tiny/1/" in app["args"]["uri"]
    assert applied.json()["resources"] == {"cpu": 1.0}
