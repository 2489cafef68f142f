"""llm endpoints through the server's door with the real `openai` client: chat and
completions, streamed and not, usage, OpenAI-shaped errors, keys, rate limits, metering and
metrics, on the session's one llm endpoint (tests/llm_endpoint.py).

The tiny model's weights are random, so its words are noise; what the tests check is the API
around them.
"""

from __future__ import annotations

import time

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.factories import create_project
from tests.llm_endpoint import ENDPOINT, HELLO, SPEC, Scene
from tests.server import Server
from tests.stacks import RAY_ONCE

pytestmark = RAY_ONCE


@pytest.fixture
def scene(llm_endpoint: Scene) -> Scene:
    return llm_endpoint


def test_a_chat_answer_comes_with_its_usage(scene: Scene) -> None:
    answer = scene.openai().chat.completions.create(
        model="tiny", messages=HELLO, max_tokens=8, temperature=0
    )
    assert answer.model == "tiny"
    assert answer.choices[0].message.role == "assistant"
    assert answer.usage is not None
    assert answer.usage.completion_tokens == 8
    assert answer.usage.prompt_tokens > 0


def test_a_stream_comes_a_chunk_per_token_with_usage_last(scene: Scene) -> None:
    stream = scene.openai().chat.completions.create(
        model="tiny",
        messages=HELLO,
        max_tokens=200,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
        # vLLM's own option: all 200 tokens, whatever the model says.
        extra_body={"ignore_eos": True},
    )
    chunks = list(stream)
    with_tokens = [c for c in chunks if c.choices]
    # A chunk per token, as the engine sends them (that the door hands each on as it comes
    # is tested against a stand-in for Serve: tests/api/test_llm_endpoint_specs.py).
    assert len(with_tokens) >= 100
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 200


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


def test_an_adapter_registered_later_is_served_at_once(scene: Scene) -> None:
    """No redeploy: the endpoint loads a registered adapter of its base when a call names
    it, as `BASE:ADAPTER` or by its name alone, and lists it among its models."""
    engines = scene.engines()
    scene.register_adapter("tone")
    client = scene.openai()
    assert {model.id for model in client.models.list()} == {"tiny", "tiny:tone"}
    asked = {"messages": HELLO, "max_tokens": 12, "temperature": 0, "seed": 3}
    base = client.chat.completions.create(model="tiny", **asked)
    adapted = client.chat.completions.create(model="tiny:tone", **asked)
    by_name = client.chat.completions.create(model="tone", **asked)
    assert adapted.choices[0].message.content == by_name.choices[0].message.content
    assert adapted.choices[0].message.content != base.choices[0].message.content
    assert scene.engines() == engines
    with pytest.raises(openai.NotFoundError, match="no registered model 'nope'"):
        client.chat.completions.create(model="tiny:nope", **asked)


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
    with scene.member() as member:
        issued = member.post(f"{scene.base}/endpoints/{ENDPOINT}/keys", json={"name": "gone"})
        member.delete(f"{scene.base}/endpoints/{ENDPOINT}/keys/{issued.json()['id']}")
    with pytest.raises(openai.AuthenticationError, match="invalid or revoked endpoint key"):
        scene.openai(key=issued.json()["key"]).models.list()
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
    limited = {**SPEC, "rate_limit": {"requests_per_minute": 1}}
    engines = scene.engines()
    with scene.member() as member:
        member.put(f"{scene.base}/endpoints/{ENDPOINT}", json=limited).raise_for_status()
        # Only the door reads the limit: Serve runs on as it was, with no engine restart.
        assert scene.running(timeout=30)["revision"] > 1
        assert scene.engines() == engines
        # A key of its own: each caller has its own window, and the others' calls are in theirs.
        issued = member.post(f"{scene.base}/endpoints/{ENDPOINT}/keys", json={"name": "limited"})
    try:
        client = scene.openai(issued.json()["key"])
        client.chat.completions.create(model="tiny", messages=HELLO, max_tokens=1)
        with pytest.raises(openai.RateLimitError) as refused:
            client.chat.completions.create(model="tiny", messages=HELLO, max_tokens=1)
        assert int(refused.value.response.headers["retry-after"]) >= 1
        assert refused.value.body["code"] == "rate_limit_exceeded"
    finally:
        with scene.member() as member:
            member.put(f"{scene.base}/endpoints/{ENDPOINT}", json=SPEC).raise_for_status()


def test_a_token_budget_refuses_calls_once_spent(scene: Scene) -> None:
    budget = {**SPEC, "rate_limit": {"tokens_per_minute": 10}}
    with scene.member() as member:
        member.put(f"{scene.base}/endpoints/{ENDPOINT}", json=budget).raise_for_status()
        issued = member.post(f"{scene.base}/endpoints/{ENDPOINT}/keys", json={"name": "budget"})
    try:
        client = scene.openai(issued.json()["key"])
        client.chat.completions.create(model="tiny", messages=HELLO, max_tokens=8)
        with pytest.raises(openai.RateLimitError, match="10 tokens per minute"):
            client.chat.completions.create(model="tiny", messages=HELLO, max_tokens=8)
    finally:
        with scene.member() as member:
            member.put(f"{scene.base}/endpoints/{ENDPOINT}", json=SPEC).raise_for_status()
