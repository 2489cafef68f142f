"""llm endpoints on the session's real Ray Serve, with real vLLM (the CPU build, in the LLM
environment) and the real `openai` client pointed at the server's door.

One endpoint of the `llm-tiny` model serves the whole module: the engine takes about a minute
to start on two cores. The tiny model's weights are random, so its words are noise; what the
tests check is the API around them: streaming, usage, errors, keys, limits and metering.
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
from prometheus_client.parser import text_string_to_metric_families

from tests import llm
from tests.factories import Project, create_project
from tests.server import Server
from tests.stacks import RAY_ONCE

pytestmark = RAY_ONCE
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


def _running(scene: Scene, revision: int, timeout: float = 400) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    with scene.member() as client:
        while True:
            state = client.get(f"{scene.base}/endpoints/{ENDPOINT}").json()
            if state["revision"] == revision and state["status"] == "RUNNING":
                return state
            assert state["status"] != "DEPLOY_FAILED", state
            assert time.monotonic() < deadline, state
            time.sleep(1)


@pytest.fixture(scope="module")
def scene(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
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
    scene = Scene(server, project, issued.json()["key"], issued.json()["id"])
    _running(scene, 1)
    yield scene
    with server.client(project.member.token) as client:
        client.delete(f"{base}/endpoints/{ENDPOINT}")


def test_a_chat_answer_comes_with_its_usage(scene: Scene) -> None:
    answer = scene.openai().chat.completions.create(
        model="tiny", messages=HELLO, max_tokens=8, temperature=0
    )
    assert answer.model == "tiny"
    assert answer.choices[0].message.role == "assistant"
    assert answer.usage is not None
    assert answer.usage.completion_tokens == 8
    assert answer.usage.prompt_tokens > 0


def test_a_stream_arrives_chunk_by_chunk_with_usage_last(scene: Scene) -> None:
    stream = scene.openai().chat.completions.create(
        model="tiny",
        messages=HELLO,
        max_tokens=32,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    arrivals: list[float] = []
    chunks = []
    for chunk in stream:
        arrivals.append(time.perf_counter())
        chunks.append(chunk)
    with_tokens = [c for c in chunks if c.choices]
    # One chunk per token: the door relays them as the engine makes them.
    assert len(with_tokens) >= 16
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 32
    # The first token reached the client before the last was generated.
    assert arrivals[-1] - arrivals[0] > 0


def test_a_stream_without_usage_asked_gets_none(scene: Scene) -> None:
    chunks = list(
        scene.openai().chat.completions.create(
            model="tiny", messages=HELLO, max_tokens=4, temperature=0, stream=True
        )
    )
    assert chunks and all(chunk.choices for chunk in chunks)


def test_completions_and_models(scene: Scene) -> None:
    client = scene.openai()
    answer = client.completions.create(model="tiny", prompt="once upon", max_tokens=5, seed=7)
    assert answer.usage is not None and answer.usage.completion_tokens == 5
    assert [model.id for model in client.models.list()] == ["tiny"]


def test_errors_are_openai_shaped(scene: Scene) -> None:
    with pytest.raises(openai.NotFoundError) as unknown:
        scene.openai().chat.completions.create(model="nope", messages=HELLO, max_tokens=2)
    assert "nope" in unknown.value.message
    with pytest.raises(openai.BadRequestError):
        scene.openai().chat.completions.create(model="tiny", messages=HELLO, max_tokens=100000)
    with pytest.raises(openai.AuthenticationError) as no_key:
        scene.openai(key="fabe_not-a-key").chat.completions.create(
            model="tiny", messages=HELLO, max_tokens=2
        )
    assert no_key.value.body["code"] == "invalid_api_key"
    anonymous = httpx.post(f"{scene.door}/chat/completions", json={"model": "tiny"})
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["type"] == "authentication_error"


def test_another_endpoints_key_finds_nothing(scene: Scene, server: Server) -> None:
    other = create_project(server)
    with server.client(scene.project.member.token) as client:
        wrong = client.post(
            f"/serve/{other.name}/{ENDPOINT}/v1/chat/completions",
            json={"model": "tiny", "messages": HELLO},
            headers={"Authorization": f"Bearer {scene.key}"},
        )
    assert wrong.status_code == 404
    assert "not found" in wrong.json()["error"]["message"]


def test_tokens_are_counted_once_per_call_in_usage(scene: Scene) -> None:
    def counted() -> dict[str, int]:
        with scene.member() as client:
            lines = client.get(f"{scene.base}/usage", params={"group_by": "key"}).json()
        return {
            line["resource"]: line["tokens"]
            for line in lines
            if line["endpoint"] == ENDPOINT and line["key"] == "laptop"
        }

    before = counted()
    answer = scene.openai().chat.completions.create(
        model="tiny", messages=HELLO, max_tokens=3, temperature=0, stream=True
    )
    list(answer)
    deadline = time.monotonic() + 10
    while counted().get("completion_tokens", 0) - before.get("completion_tokens", 0) < 3:
        assert time.monotonic() < deadline, counted()
        time.sleep(0.1)
    after = counted()
    assert after["completion_tokens"] - before.get("completion_tokens", 0) == 3
    assert after["prompt_tokens"] > before.get("prompt_tokens", 0)


def test_metrics_show_tokens_and_their_timing(scene: Scene) -> None:
    list(
        scene.openai().chat.completions.create(
            model="tiny", messages=HELLO, max_tokens=6, stream=True
        )
    )
    with scene.server.admin() as admin:
        text = admin.get("/metrics").text
    ours = {"project": scene.project.name, "endpoint": ENDPOINT, "version": "tiny@1"}
    samples = {
        (sample.name, sample.labels.get("kind")): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if ours.items() <= sample.labels.items()
    }
    assert samples[("fabric_endpoint_tokens_total", "completion")] >= 6
    assert samples[("fabric_endpoint_tokens_total", "prompt")] > 0
    for name in (
        "fabric_endpoint_time_to_first_token_seconds_count",
        "fabric_endpoint_inter_token_latency_seconds_count",
        "fabric_endpoint_output_tokens_per_second_count",
    ):
        assert samples[(name, None)] >= 1, name


def test_a_key_over_its_rate_gets_429_with_retry_after(scene: Scene) -> None:
    with scene.member() as member:
        member.put(
            f"{scene.base}/endpoints/{ENDPOINT}",
            json={**SPEC, "rate_limit": {"requests_per_minute": 1}},
        ).raise_for_status()
        # A key of its own: each caller has its own window, and the others' calls are in theirs.
        issued = member.post(f"{scene.base}/endpoints/{ENDPOINT}/keys", json={"name": "limited"})
    client = scene.openai(issued.json()["key"])
    client.chat.completions.create(model="tiny", messages=HELLO, max_tokens=1)
    with pytest.raises(openai.RateLimitError) as limited:
        client.chat.completions.create(model="tiny", messages=HELLO, max_tokens=1)
    assert int(limited.value.response.headers["retry-after"]) >= 1
    assert limited.value.body["code"] == "rate_limit_exceeded"
