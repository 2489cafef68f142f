"""llm endpoints through the API on the fake backend: what the server refuses before
anything is stored or reaches Serve (the kind of model, the quota, no LLM environment), the
Serve application an accepted one becomes, and how the door relays a stream (against a
stand-in for Serve's ingress, which shows what real vLLM cannot: when each chunk is sent)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

from tests.factories import Project, create_project
from tests.server import Server, serving
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


def test_the_door_hands_each_chunk_on_as_it_comes(
    server: Server, project: Project, llm_python: str
) -> None:
    """A stand-in for Serve streams one token, then waits until the client has it before it
    sends the next: a door that read the whole answer first would never let it go on. The
    door also asked for the usage chunk, kept it from a client that did not ask, and counted
    its tokens."""
    fake = server.fake
    assert fake is not None
    client_has_first = threading.Event()
    seen: dict[str, Any] = {}

    async def chat(request: Request) -> StreamingResponse:
        seen["body"] = await request.json()

        async def events() -> AsyncIterator[bytes]:
            yield b'data: {"choices":[{"index":0,"delta":{"content":"a"}}]}\n\n'
            seen["went_on"] = await asyncio.to_thread(client_has_first.wait, 10)
            yield b'data: {"choices":[{"index":0,"delta":{"content":"b"}}]}\n\n'
            yield b'data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2}}\n\n'
            yield b"data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    route = f"/serve/{project.name}/stream/v1/chat/completions"
    stand_in = Starlette(routes=[Route(route, chat, methods=["POST"])])
    assert _apply(server, project, "stream", LLM).status_code == 201
    with serving(stand_in) as url, server.client(project.member.token) as client:
        fake.serve_url = url
        try:
            body = {"model": "tiny", "messages": [], "stream": True}
            with client.stream("POST", route, json=body) as answer:
                data = []
                for line in answer.iter_lines():
                    if line.startswith("data:"):
                        data.append(line)
                        client_has_first.set()
        finally:
            fake.serve_url = "http://127.0.0.1:9"
        assert seen["went_on"], "the first chunk did not reach the client before the last"
        assert seen["body"]["stream_options"] == {"include_usage": True}
        assert [json.loads(d[5:])["choices"][0]["delta"]["content"] for d in data[:2]] == [
            "a",
            "b",
        ]
        assert data[2:] == ["data: [DONE]"], "the usage chunk the client did not ask for"
        lines = client.get(
            f"/api/v1/projects/{project.name}/usage", params={"group_by": "endpoint"}
        ).json()
    counted = {line["resource"]: line["tokens"] for line in lines if line["endpoint"] == "stream"}
    assert counted == {"prompt_tokens": 3, "completion_tokens": 2}
