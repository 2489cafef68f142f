"""The session's one llm endpoint: the `llm-tiny` model on real vLLM (the CPU build, in the
LLM environment) on the session's real Ray Serve, called through the server's door.

The engine takes about a minute to start on two cores, so every test that needs an llm
endpoint shares this one (the `llm_endpoint` fixture of tests/conftest.py). Tests may change
only what the door decides (`rate_limit`, `anonymous`, keys), which restarts nothing.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from fabric.backends.local_head import LocalRayHead
from tests import llm
from tests.factories import Project, create_project
from tests.jobs import wait_until
from tests.server import Server

ENDPOINT = "chat"
SPEC: dict[str, Any] = {
    "kind": "llm",
    "versions": [{"model": "tiny"}],
    "cpu": 0.5,
    "engine": {"max_model_len": 256, "dtype": "float32"},
    "rate_limit": {"requests_per_minute": 1000},
}
HELLO = [{"role": "user", "content": "hello there"}]


@dataclass
class Scene:
    server: Server
    project: Project
    key: str
    key_id: int
    # A peft adapter of the tiny model, not registered until a test does (`register_adapter`).
    adapter: Path

    @property
    def base(self) -> str:
        return f"/api/v1/projects/{self.project.name}"

    @property
    def door(self) -> str:
        return f"{self.server.url}/serve/{self.project.name}/{ENDPOINT}/v1"

    def openai(self, key: str | None = None, **options: Any) -> openai.OpenAI:
        return openai.OpenAI(
            base_url=self.door, api_key=key or self.key, max_retries=0, timeout=120, **options
        )

    def member(self) -> httpx.Client:
        return self.server.client(self.project.member.token)

    def register_adapter(self, name: str) -> dict[str, Any]:
        """Register the adapter as the lora model `name`, for the endpoint's base tiny@1."""
        incoming = Path(self.server.settings.storage_root) / "projects" / self.project.name
        shutil.copytree(self.adapter, incoming / "incoming" / name)
        with self.member() as client:
            registered = client.post(
                f"{self.base}/models/{name}/versions",
                json={"source": f"incoming/{name}", "framework": "lora", "base": "tiny@1"},
            )
        registered.raise_for_status()
        return registered.json()

    def engines(self) -> set[str]:
        """The ids of the replicas that run the endpoint's engine, as Serve reports them."""
        head = LocalRayHead(self.server.settings)
        with httpx.Client(headers=head.auth_headers(), timeout=60) as ray:
            apps = ray.get(f"{head.dashboard_url}/api/serve/applications/").json()
        app = apps["applications"][f"{self.project.name}.{ENDPOINT}"]
        return {
            replica["replica_id"]
            for name, deployment in app["deployments"].items()
            if name.startswith("LLMServer")
            for replica in deployment["replicas"]
        }

    def running(self, timeout: float = 400) -> dict[str, Any]:
        """The endpoint, once Serve runs its current revision (failing at once if its
        deploy failed)."""
        with self.member() as client:
            state = wait_until(
                lambda: client.get(f"{self.base}/endpoints/{ENDPOINT}").json(),
                lambda s: (
                    s["status"] == "DEPLOY_FAILED"
                    or (s["status"] == "RUNNING" and s["healthy_revision"] == s["revision"])
                ),
                timeout,
            )
        assert state["status"] != "DEPLOY_FAILED", state
        return state


# The endpoints `serve` has up, to take down after their last test (tests/conftest.py).
_UP: list[Scene] = []


def serve(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    """Deploy the endpoint, wait until it runs; take it down after its last test, or at the
    end of the session at the latest."""
    project = create_project(server)
    incoming = Path(server.settings.storage_root) / "projects" / project.name / "incoming"
    shutil.copytree(llm.tiny_model(tmp_path_factory), incoming / "tiny")
    base = f"/api/v1/projects/{project.name}"
    with server.client(project.member.token) as client:
        client.post(
            f"{base}/models/tiny/versions", json={"source": "incoming/tiny", "framework": "llm"}
        ).raise_for_status()
        client.put(f"{base}/endpoints/{ENDPOINT}", json=SPEC).raise_for_status()
        issued = client.post(f"{base}/endpoints/{ENDPOINT}/keys", json={"name": "laptop"})
        issued.raise_for_status()
    scene = Scene(
        server, project, issued.json()["key"], issued.json()["id"], llm.adapter(tmp_path_factory)
    )
    _UP.append(scene)
    scene.running()
    yield scene
    take_down_all()


def take_down_all() -> None:
    """Delete the endpoints `serve` deployed, and wait until Serve has let them go."""
    while _UP:
        scene = _UP.pop()
        with scene.member() as client:
            client.delete(f"{scene.base}/endpoints/{ENDPOINT}")
        head = LocalRayHead(scene.server.settings)
        app = f"{scene.project.name}.{ENDPOINT}"
        deadline = time.monotonic() + 120
        with httpx.Client(headers=head.auth_headers(), timeout=60) as ray:
            while time.monotonic() < deadline:
                apps = ray.get(f"{head.dashboard_url}/api/serve/applications/").json()
                if app not in apps.get("applications", {}):
                    break
                time.sleep(0.5)
