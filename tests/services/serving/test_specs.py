"""Endpoint specs without Ray: what they refuse, the replicas a schedule asks for at an hour,
what the quota holds, and the Serve application they become."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from fabric.errors import InvalidSpec
from fabric.services.serving import endpoints, serve_config, specs
from fabric.services.serving.specs import EndpointSpec

CANARY = {
    "versions": [
        {"model": "churn", "version": 3, "weight": 80},
        {"model": "churn", "version": 4, "weight": 20},
    ],
    "cpu": 0.5,
    "gpu": 0.25,
    "autoscaling": {"min_replicas": 1, "max_replicas": 3},
    "schedule": [
        {
            "start": "09:00",
            "end": "21:00",
            "weekdays": [0, 1, 2, 3, 4],
            "min_replicas": 2,
            "max_replicas": 6,
        }
    ],
}
MONDAY_NOON = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
MONDAY_NIGHT = datetime(2026, 11, 23, 22, 0, tzinfo=UTC)
SUNDAY_NOON = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def test_a_schedule_window_scales_within_its_hours_and_days() -> None:
    spec = EndpointSpec.model_validate(CANARY)
    assert spec.replicas_at(MONDAY_NOON) == (2, 6)
    assert spec.replicas_at(MONDAY_NIGHT) == (1, 3)
    assert spec.replicas_at(SUNDAY_NOON) == (1, 3)
    overnight = EndpointSpec.model_validate(
        {
            "versions": [{"model": "m"}],
            "replicas": 1,
            "schedule": [{"start": "22:00", "end": "06:00", "replicas": 4}],
        }
    )
    assert overnight.replicas_at(datetime(2026, 11, 23, 23, 30, tzinfo=UTC)) == (4, 4)
    assert overnight.replicas_at(datetime(2026, 11, 24, 5, 59, tzinfo=UTC)) == (4, 4)
    assert overnight.replicas_at(MONDAY_NOON) == (1, 1)


def test_the_quota_holds_the_peak_of_every_deployed_version() -> None:
    spec = EndpointSpec.model_validate(CANARY)
    # Six replicas at the busiest hour, for each of two versions.
    assert spec.resources() == {"cpu": 6.0, "gpu": 3.0}
    mirrored = EndpointSpec.model_validate(
        {
            "versions": [{"model": "m", "version": 1}],
            "mirror": {"model": "m", "version": 2, "percent": 10},
            "replicas": 2,
            "cpu": 1,
        }
    )
    assert mirrored.resources() == {"cpu": 4.0}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"versions": []}, "versions: List should have at least 1 item"),
        (
            {"versions": [{"model": "m", "weight": 0}]},
            "at least one version needs a weight above 0",
        ),
        (
            {"versions": [{"model": "m", "wieght": 1}]},
            "versions.0.wieght: Extra inputs are not permitted",
        ),
        (
            {"autoscaling": {"min_replicas": 5, "max_replicas": 2}},
            "min_replicas must not exceed max_replicas",
        ),
        ({"batching": {"max_batch_size": 0}}, "batching.max_batch_size"),
        ({"cpu": 0}, "cpu: Input should be greater than 0"),
        ({"env": {"1BAD": "x"}}, "'1BAD' is not an environment variable name"),
        ({"schedule": [{"start": "09:00", "end": "10:00"}]}, "a window sets replicas"),
        ({"mirror": {"model": "m", "percent": 0}}, "mirror.percent"),
        ({"engine": {"max_model_len": 256}}, "engine: only an llm endpoint"),
        (
            {"kind": "llm", "versions": [{"model": "m"}, {"model": "n"}]},
            "an llm endpoint serves one base model version",
        ),
        (
            {"kind": "llm", "mirror": {"model": "m", "percent": 5}},
            "mirror: an llm endpoint has none",
        ),
        ({"kind": "llm", "batching": {"max_batch_size": 4}}, "batching: an llm endpoint"),
        ({"kind": "llm", "engine": {"dtype": "int3"}}, "engine.dtype"),
        ({"kind": "gguf"}, "kind: Input should be 'classic' or 'llm'"),
        ({"rate_limit": {"requests_per_minute": 0}}, "rate_limit.requests_per_minute"),
    ],
)
def test_bad_specs_name_the_field(change: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidSpec, match=message.replace("(", r"\(")):
        endpoints.parse({"versions": [{"model": "m"}], **change})


def _version(model: str, number: int) -> Any:
    signature = {"inputs": [{"name": "x", "type": "number"}]}
    return SimpleNamespace(
        model=SimpleNamespace(name=model),
        version=number,
        uri=f"/s/{model}/{number}/model.joblib",
        framework="sklearn",
        entry=None,
        signature=signature,
    )


def test_the_serve_application_follows_the_spec_and_the_hour() -> None:
    spec = EndpointSpec.model_validate(
        {**CANARY, "batching": {"max_batch_size": 8}, "env": {"MODE": "fast"}}
    )
    endpoint = SimpleNamespace(name="churn", served_revision=7, spec=spec.model_dump(mode="json"))
    rows = {"churn-v3": _version("churn", 3), "churn-v4": _version("churn", 4)}
    day = serve_config.application("vision", endpoint, rows, MONDAY_NOON)
    night = serve_config.application("vision", endpoint, rows, MONDAY_NIGHT)
    assert day["name"] == "vision.churn"
    assert day["route_prefix"] == "/serve/vision/churn"
    assert day["runtime_env"] == {"env_vars": {"MODE": "fast"}}
    assert day["args"]["revision"] == 7
    assert [(v["name"], v["weight"], v["features"]) for v in day["args"]["versions"]] == [
        ("churn-v3", 80, ["x"]),
        ("churn-v4", 20, ["x"]),
    ]
    router, v3, _ = day["deployments"]
    assert router["name"] == "router" and router["ray_actor_options"] == {"num_cpus": 0}
    assert v3["ray_actor_options"] == {"num_cpus": 0.5, "num_gpus": 0.25}
    assert v3["user_config"] == {"max_batch_size": 8, "batch_wait_timeout_s": 0.01}
    assert v3["autoscaling_config"]["min_replicas"] == 2
    assert night["deployments"][1]["autoscaling_config"]["max_replicas"] == 3
    assert serve_config.digest([day]) != serve_config.digest([night])
    unbatched = SimpleNamespace(
        name="churn", served_revision=8, spec={**endpoint.spec, "batching": None}
    )
    plain = serve_config.application("vision", unbatched, rows, MONDAY_NOON)
    assert plain["deployments"][1]["user_config"] == {}, "turns batching off in running replicas"


def _llm(model: str, number: int) -> Any:
    return SimpleNamespace(
        model=SimpleNamespace(name=model),
        version=number,
        uri=f"/s/{model}/{number}",
        framework="llm",
        signature={},
    )


LLM_SPEC = {
    "kind": "llm",
    "versions": [{"model": "qwen", "version": 1}],
    "cpu": 2,
    "gpu": 1,
    "memory_gib": 8,
    "replicas": 2,
    "engine": {"max_model_len": 4096, "tensor_parallel_size": 2},
    "env": {"VLLM_LOGGING_LEVEL": "DEBUG"},
}


def test_an_llm_endpoint_is_ray_serves_llm_app_in_the_llm_environment() -> None:
    spec = EndpointSpec.model_validate(LLM_SPEC)
    endpoint = SimpleNamespace(name="chat", served_revision=3, spec=spec.model_dump(mode="json"))
    app = serve_config.application(
        "vision", endpoint, {"qwen-v1": _llm("qwen", 1)}, MONDAY_NOON, "/opt/vllm/bin/python"
    )
    assert app["import_path"] == "serve_apps.llm:app_builder"
    assert app["route_prefix"] == "/serve/vision/chat"
    assert app["runtime_env"]["py_executable"] == "/opt/vllm/bin/python"
    assert app["runtime_env"]["env_vars"]["VLLM_LOGGING_LEVEL"] == "DEBUG"
    assert app["runtime_env"]["env_vars"]["HF_HUB_OFFLINE"] == "1"
    args = app["args"]
    assert (args["model"], args["version"], args["uri"], args["revision"]) == (
        "qwen",
        1,
        "/s/qwen/1",
        3,
    )
    assert args["engine"]["max_model_len"] == 4096
    # What the quota holds per replica, split over the two tensor-parallel workers.
    assert args["bundle"] == {"CPU": 1.0, "GPU": 0.5, "memory": 4 * 2**30}
    assert args["engine"]["tensor_parallel_size"] == 2
    assert args["deployment"]["num_replicas"] == 2
    assert args["deployment"]["ray_actor_options"] == {"num_cpus": 0}
    assert spec.resources() == {"cpu": 4.0, "gpu": 2.0, "memory": 16.0}


def test_only_what_the_door_decides_leaves_serve_as_it_is() -> None:
    stored = EndpointSpec.model_validate(LLM_SPEC).model_dump(mode="json")
    door = {**stored, "anonymous": True, "rate_limit": {"requests_per_minute": 5}}
    assert specs.serve_part(door) == specs.serve_part(stored)
    assert specs.serve_part({**stored, "replicas": 3}) != specs.serve_part(stored)
