"""`llm` and `lora` versions in the registry through the API: a real tiny Llama folder and a
real peft adapter of it (made in the LLM environment), copied with their checksum; the base an
adapter names, checked; folders that lack a part refused, naming it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from fabric.runtime import model_store
from tests import llm
from tests.factories import Project, create_project
from tests.server import Server
from tests.stacks import WITHOUT_RAY

pytestmark = WITHOUT_RAY


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return {"llm": llm.tiny_model(tmp_path_factory), "lora": llm.adapter(tmp_path_factory)}


@pytest.fixture(scope="module")
def project(server: Server, made: dict[str, Path]) -> Project:
    """A project whose storage holds the tiny model (incoming/tiny) and its adapter."""
    project = create_project(server)
    incoming = Path(server.settings.storage_root) / "projects" / project.name / "incoming"
    for name, folder in made.items():
        shutil.copytree(folder, incoming / name)
    return project


def _register(server: Server, project: Project, name: str, **body: Any) -> Any:
    with server.client(project.member.token) as client:
        return client.post(f"/api/v1/projects/{project.name}/models/{name}/versions", json=body)


def _broken(server: Server, project: Project, kind: str, name: str) -> Path:
    """A copy of the made folder (kind `llm` or `lora`) to take a part out of."""
    incoming = Path(server.settings.storage_root) / "projects" / project.name / "incoming"
    target = incoming / name
    if not target.exists():
        shutil.copytree(incoming / kind, target)
    return target


def test_an_llm_folder_is_copied_with_its_checksum(server: Server, project: Project) -> None:
    registered = _register(server, project, "tiny", source="incoming/llm", framework="llm")
    assert registered.status_code == 201, registered.text
    version = registered.json()
    assert (version["framework"], version["base"]) == ("llm", None)
    copied = Path(version["uri"])
    assert copied.parts[-3:-1] == ("tiny", "1")
    assert version["sha256"] == model_store.checksum(copied)
    assert {"config.json", "tokenizer.json", "model.safetensors"} <= {
        p.name for p in copied.iterdir()
    }
    # Told apart from other frameworks by its files when none is named.
    guessed = _register(server, project, "tiny", source="incoming/llm")
    assert guessed.status_code == 201, guessed.text
    assert (guessed.json()["framework"], guessed.json()["version"]) == ("llm", 2)


def test_a_lora_adapter_names_its_base_pinned(server: Server, project: Project) -> None:
    assert _register(server, project, "chat", source="incoming/llm").status_code == 201
    with server.client(project.member.token) as client:
        moved = client.put(
            f"/api/v1/projects/{project.name}/models/chat/aliases/production", json={"version": 1}
        )
        assert moved.status_code == 200, moved.text
    registered = _register(
        server,
        project,
        "chat-style",
        source="incoming/lora",
        framework="lora",
        base="chat@production",
    )
    assert registered.status_code == 201, registered.text
    version = registered.json()
    assert (version["framework"], version["base"]) == ("lora", "chat@1")
    manifest = json.loads((Path(version["uri"]).parent / "manifest.json").read_text())
    assert manifest["base"] == {"model": "chat", "version": 1}
    with server.client(project.member.token) as client:
        shown = client.get(f"/api/v1/projects/{project.name}/models/chat-style/versions/1")
    assert shown.json()["base"] == "chat@1"


@pytest.mark.parametrize(
    ("kind", "remove", "message"),
    [
        ("llm", ["config.json"], "it lacks config.json"),
        ("llm", ["model.safetensors"], "the weights as *.safetensors"),
        ("llm", ["tokenizer.json"], "the tokenizer's files (one of tokenizer.json"),
        (
            "llm",
            ["chat_template.jinja", "tokenizer_config.json"],
            "a chat template (chat_template.jinja",
        ),
        ("lora", ["adapter_model.safetensors"], "the adapter's weights (adapter_model.safetensors"),
        ("lora", ["adapter_config.json"], "it lacks adapter_config.json"),
    ],
)
def test_a_folder_without_a_part_is_refused_naming_it(
    server: Server, project: Project, kind: str, remove: list[str], message: str
) -> None:
    folder = _broken(server, project, kind, f"without-{remove[0]}")
    for name in remove:
        (folder / name).unlink(missing_ok=True)
    body: dict[str, Any] = {"source": f"incoming/{folder.name}", "framework": kind}
    if kind == "lora":
        _register(server, project, "base-of-broken", source="incoming/llm")
        body["base"] = "base-of-broken@1"
    refused = _register(server, project, "broken", **body)
    assert refused.status_code == 422, refused.text
    assert message in refused.json()["detail"]
    with server.client(project.member.token) as client:
        assert client.get(f"/api/v1/projects/{project.name}/models/broken").status_code == 404


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"source": "incoming/lora", "framework": "lora"}, "names the llm version it adapts"),
        (
            {"source": "incoming/lora", "framework": "lora", "base": "nothing@1"},
            "base 'nothing@1': model 'nothing' not found",
        ),
        (
            {"source": "incoming/lora", "framework": "lora", "base": "an-adapter@1"},
            "is lora, not llm",
        ),
        (
            {"source": "incoming/lora", "framework": "lora", "base": "the-base@7"},
            "has no version 7",
        ),
        (
            {"source": "incoming/llm", "framework": "llm", "base": "the-base@1"},
            "only a lora adapter has a base",
        ),
        ({"source": "incoming/llm", "framework": "lora", "base": "the-base@1"}, "peft adapter"),
    ],
)
def test_a_bad_base_is_refused(
    server: Server, project: Project, body: dict[str, Any], message: str
) -> None:
    with server.client(project.member.token) as client:
        known = client.get(f"/api/v1/projects/{project.name}/models/the-base")
    if known.status_code == 404:
        assert _register(server, project, "the-base", source="incoming/llm").status_code == 201
        adapter = _register(
            server, project, "an-adapter", source="incoming/lora", base="the-base@1"
        )
        assert adapter.status_code == 201, adapter.text
    refused = _register(server, project, "refused", **body)
    assert refused.status_code == 422, refused.text
    assert message in refused.json()["detail"]


def test_a_classic_endpoint_refuses_an_llm_version(server: Server, project: Project) -> None:
    assert _register(server, project, "served", source="incoming/llm").status_code == 201
    spec = {"versions": [{"model": "served", "version": 1}], "cpu": 0.1}
    with server.client(project.member.token) as client:
        refused = client.put(f"/api/v1/projects/{project.name}/endpoints/chat", json=spec)
    assert refused.status_code == 422, refused.text
    assert "is llm, served by vLLM" in refused.json()["detail"]
