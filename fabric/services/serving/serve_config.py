"""A project's endpoints as Ray Serve's declarative config: one application per endpoint.

Each application is `serve_apps.router:app_builder`: a router deployment (the ingress, which
splits traffic by weight) and one model deployment per version, each loading its artifact by
framework (`serve_apps.classic`). Its `args`, the deployments' names and the import path are
the contract in `fabric.runtime.serve_contract`, which the applications import too. The
database is the truth; this is a pure function of it, so the same endpoints always give the
same config and a digest tells when Serve is behind.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from fabric.db.models import EndpointModel, ModelVersionModel
from fabric.runtime.serve_contract import (
    IMPORT_PATH,
    ROUTER_DEPLOYMENT,
    EndpointArgs,
    VersionArgs,
)
from fabric.services.serving.specs import EndpointSpec, Mirror, VersionTraffic

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


def _deployment(spec: EndpointSpec, key: str, now: datetime) -> dict[str, Any]:
    low, high = spec.replicas_at(now)
    options: dict[str, Any] = {
        "name": key,
        "ray_actor_options": {"num_cpus": spec.cpu, "num_gpus": spec.gpu},
        "max_ongoing_requests": spec.max_ongoing_requests,
        "health_check_period_s": spec.health_check.period_s,
        "health_check_timeout_s": spec.health_check.timeout_s,
    }
    if spec.memory_gib:
        options["ray_actor_options"]["memory"] = int(spec.memory_gib * 2**30)
    if spec.autoscaling:
        options["autoscaling_config"] = {
            "min_replicas": low,
            "max_replicas": high,
            "target_ongoing_requests": spec.autoscaling.target_ongoing_requests,
        }
    else:
        options["num_replicas"] = low
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
) -> dict[str, Any]:
    """The endpoint's Serve application; `versions` maps each deployment key to its row."""
    spec = EndpointSpec.model_validate(endpoint.spec)
    args = EndpointArgs(
        endpoint=f"{project}/{endpoint.name}",
        revision=endpoint.revision,
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


def digest(applications: list[dict[str, Any]]) -> str:
    return hashlib.sha256(json.dumps(applications, sort_keys=True).encode()).hexdigest()
