"""A project's endpoints as Ray Serve's declarative config: one application per endpoint.

A classic endpoint's application is `serve_apps.router:app_builder`: a router deployment (the
ingress, which splits traffic by weight) and one model deployment per version, each loading
its artifact by framework (`serve_apps.classic`). An llm endpoint's is `serve_apps.llm:
app_builder`, Ray Serve's LLM application around vLLM, run in the LLM environment (its
`runtime_env.py_executable`, the backend's `llm_python`). Their `args`, the deployments'
names and the import paths are the contract in `fabric.runtime.serve_contract`, which the
applications import too. The database is the truth; this is a pure function of it, so the
same endpoints always give the same config and a digest tells when Serve is behind.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path
from typing import Any

from fabric.db.models import EndpointModel, ModelVersionModel
from fabric.runtime import model_store
from fabric.runtime.serve_contract import (
    IMPORT_PATH,
    LLM_IMPORT_PATH,
    ROUTER_DEPLOYMENT,
    EndpointArgs,
    LlmArgs,
    VersionArgs,
)
from fabric.services.serving.specs import EndpointKind, EndpointSpec, Mirror, VersionTraffic

# The router only parses and forwards; it asks Ray for no CPU, so the project's quota counts
# exactly the model replicas it was shown.
ROUTER_OPTIONS: dict[str, Any] = {
    "name": ROUTER_DEPLOYMENT,
    "num_replicas": 1,
    "ray_actor_options": {"num_cpus": 0},
    "max_ongoing_requests": 1000,
}


def app_name(project: str, endpoint: str) -> str:
    """Project and endpoint names hold no '.', so no two endpoints share an application."""
    return f"{project}.{endpoint}"


def route_prefix(project: str, endpoint: str) -> str:
    return f"/serve/{project}/{endpoint}"


def _scale(spec: EndpointSpec, now: datetime) -> dict[str, Any]:
    """Replicas (or autoscaling bounds) and health checks, alike for both kinds."""
    low, high = spec.replicas_at(now)
    options: dict[str, Any] = {
        "max_ongoing_requests": spec.max_ongoing_requests,
        "health_check_period_s": spec.health_check.period_s,
        "health_check_timeout_s": spec.health_check.timeout_s,
    }
    if spec.autoscaling:
        options["autoscaling_config"] = {
            "min_replicas": low,
            "max_replicas": high,
            "target_ongoing_requests": spec.autoscaling.target_ongoing_requests,
        }
    else:
        options["num_replicas"] = low
    return options


def _deployment(spec: EndpointSpec, key: str, now: datetime) -> dict[str, Any]:
    options: dict[str, Any] = {
        "name": key,
        "ray_actor_options": {"num_cpus": spec.cpu, "num_gpus": spec.gpu},
        **_scale(spec, now),
    }
    if spec.memory_gib:
        options["ray_actor_options"]["memory"] = int(spec.memory_gib * 2**30)
    # Always sent: Serve does not reconfigure running replicas when user_config goes away, so
    # turning batching off is an empty one.
    options["user_config"] = spec.batching.model_dump() if spec.batching else {}
    return options


def _version(traffic: VersionTraffic | Mirror, row: ModelVersionModel) -> VersionArgs:
    inputs = (row.signature or {}).get("inputs") or []
    return VersionArgs(
        name=traffic.key,
        model=row.model.name,
        version=row.version,
        uri=row.uri,
        framework=row.framework,
        entry=row.entry,
        features=[item["name"] for item in inputs] or None,
        # A mirror's shadow takes no traffic of its own: the door sends it copies by name.
        weight=traffic.weight if isinstance(traffic, VersionTraffic) else 0.0,
    )


def application(
    project: str,
    endpoint: EndpointModel,
    versions: dict[str, ModelVersionModel],
    now: datetime,
    llm_python: str | None = None,
) -> dict[str, Any]:
    """The endpoint's Serve application; `versions` maps each deployment key to its row."""
    spec = EndpointSpec.model_validate(endpoint.spec)
    if spec.kind is EndpointKind.LLM:
        return _llm_application(project, endpoint, spec, versions, now, llm_python)
    args = EndpointArgs(
        endpoint=f"{project}/{endpoint.name}",
        revision=endpoint.served_revision,
        versions=[_version(traffic, versions[traffic.key]) for traffic in spec.deployed()],
    )
    app: dict[str, Any] = {
        "name": app_name(project, endpoint.name),
        "route_prefix": route_prefix(project, endpoint.name),
        "import_path": IMPORT_PATH,
        "args": args.model_dump(mode="json"),
        "deployments": [
            ROUTER_OPTIONS,
            *(_deployment(spec, version.name, now) for version in args.versions),
        ],
    }
    if spec.env:
        app["runtime_env"] = {"env_vars": dict(spec.env)}
    return app


def _llm_application(
    project: str,
    endpoint: EndpointModel,
    spec: EndpointSpec,
    versions: dict[str, ModelVersionModel],
    now: datetime,
    llm_python: str | None,
) -> dict[str, Any]:
    """Ray Serve's LLM application for the endpoint's base model, in the LLM environment.

    The quota counts the spec's cpu, gpu and memory per replica, so that is what the engine's
    placement group asks, spread over its tensor-parallel workers; the replica actor and the
    OpenAI ingress ask nothing of their own (on the CPU build the engine runs in the replica).
    Without `llm_python` (refused when an endpoint is applied) it runs in the cluster's own."""
    traffic = spec.versions[0]
    row = versions[traffic.key]
    engine = spec.engine.model_dump(exclude_none=True) if spec.engine else {}
    workers = engine.get("tensor_parallel_size", 1)
    bundle = {"CPU": spec.cpu / workers, "GPU": spec.gpu / workers}
    if spec.memory_gib:
        bundle["memory"] = int(spec.memory_gib * 2**30 / workers)
    args = LlmArgs(
        endpoint=f"{project}/{endpoint.name}",
        revision=endpoint.served_revision,
        model=row.model.name,
        version=row.version,
        uri=row.uri,
        engine=engine,
        deployment={"ray_actor_options": {"num_cpus": 0}, **_scale(spec, now)},
        bundle={name: round(amount, 6) for name, amount in bundle.items() if amount},
        registry=str(model_store.registry_of(Path(row.uri))),
    )
    env = {
        # A CPU engine's KV cache, in GiB; vLLM's default (4) would not fit a small node.
        "VLLM_CPU_KVCACHE_SPACE": "1",
        # The folder is the registry's: the engine never reaches for a hub.
        "HF_HUB_OFFLINE": "1",
        **spec.env,
    }
    return {
        "name": app_name(project, endpoint.name),
        "route_prefix": route_prefix(project, endpoint.name),
        "import_path": LLM_IMPORT_PATH,
        "args": args.model_dump(mode="json"),
        "runtime_env": {"env_vars": env} | ({"py_executable": llm_python} if llm_python else {}),
    }


def digest(applications: list[dict[str, Any]]) -> str:
    return hashlib.sha256(json.dumps(applications, sort_keys=True).encode()).hexdigest()
