"""Pod templates of a project's Ray nodes: placement on a pool, size, accelerators, volumes."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from kuberay.config import ClusterConfig, Pool, WorkerGroup
from kuberay.site import (
    DASHBOARD_PORT,
    SERVE_PORT,
    project_claim,
    project_mount,
    user_claim,
    user_key,
    user_mount,
)

# A Ray resource each worker of a pool offers, so a job's driver can be pinned to its pool.
POOL_RESOURCE_PREFIX = "pool:"
POOL_RESOURCE_AMOUNT = 1000
HEAD_PORTS = [
    {"name": "gcs-server", "containerPort": 6379},
    {"name": "dashboard", "containerPort": DASHBOARD_PORT},
    {"name": "client", "containerPort": 10001},
    {"name": "serve", "containerPort": SERVE_PORT},
]


def pool_resource(pool: str) -> str:
    return f"{POOL_RESOURCE_PREFIX}{pool}"


def _placement(pool: Pool | None) -> dict[str, Any]:
    """The pod spec fields that put a pod on the pool's nodes."""
    if pool is None:
        return {}
    spec: dict[str, Any] = {}
    if pool.node_selector:
        spec["nodeSelector"] = dict(pool.node_selector)
    if pool.tolerations:
        spec["tolerations"] = [t.model_dump(exclude_none=True) for t in pool.tolerations]
    if pool.node_affinity:
        expressions = [
            {"key": r.key, "operator": r.operator, **({"values": r.values} if r.values else {})}
            for r in pool.node_affinity
        ]
        spec["affinity"] = {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchExpressions": expressions}]
                }
            }
        }
    return spec


def _volumes(
    config: ClusterConfig, project: str, users: Sequence[str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The pod's volumes and the container's mounts: the project's and each member's folder."""
    if not config.storage.shared:
        return [], []
    claims = [("project", project_claim(project), project_mount(project))]
    claims += [(f"user-{user_key(u)}", user_claim(u), user_mount(u)) for u in sorted(users)]
    volumes = [
        {"name": volume, "persistentVolumeClaim": {"claimName": claim}}
        for volume, claim, _ in claims
    ]
    mounts = [{"name": volume, "mountPath": path} for volume, _, path in claims]
    return volumes, mounts


def _pod(
    *,
    container: str,
    image: str,
    limits: dict[str, str],
    requests: dict[str, str],
    pool: Pool | None,
    volumes: tuple[list[dict[str, Any]], list[dict[str, Any]]],
    labels: dict[str, str],
    ports: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    pod_volumes, mounts = volumes
    main: dict[str, Any] = {
        "name": container,
        "image": image,
        "resources": {"limits": limits, "requests": requests},
    }
    if ports:
        main["ports"] = ports
    if mounts:
        main["volumeMounts"] = mounts
    spec: dict[str, Any] = {"containers": [main], **_placement(pool)}
    if pod_volumes:
        spec["volumes"] = pod_volumes
    return {"metadata": {"labels": labels}, "spec": spec}


def head_group(
    config: ClusterConfig, project: str, users: Sequence[str], labels: dict[str, str]
) -> dict[str, Any]:
    """The head runs no work (`num-cpus: 0`): a busy head would starve Ray's control plane."""
    head = config.head
    size = {"cpu": head.cpu, "memory": head.memory}
    return {
        "rayStartParams": {"num-cpus": "0", "dashboard-host": "0.0.0.0"},
        "template": _pod(
            container="ray-head",
            image=head.image or config.default_image,
            limits=size,
            requests=size,
            pool=config.pools.get(head.pool) if head.pool else None,
            volumes=_volumes(config, project, users),
            labels=labels,
            ports=HEAD_PORTS,
        ),
    }


def _ray_start_params(config: ClusterConfig, group: WorkerGroup) -> dict[str, str]:
    """What Ray must be told: KubeRay maps only whole `nvidia.com/gpu` cards to Ray GPUs.

    MIG slices are counted as GPUs explicitly, and Ascend NPUs become the custom resource NPU.
    """
    accelerator = config.pools[group.pool].accelerator
    resources: dict[str, float] = {pool_resource(group.pool): POOL_RESOURCE_AMOUNT}
    params: dict[str, str] = {}
    if group.npu:
        resources["NPU"] = group.npu
    if group.gpu and accelerator and accelerator.mig_profile:
        params["num-gpus"] = str(group.gpu)
    # rayStartParams values are strings; `--resources` wants JSON, quoted for the shell.
    params["resources"] = json.dumps(json.dumps(resources, sort_keys=True))
    return params


def worker_group(
    config: ClusterConfig,
    group: WorkerGroup,
    project: str,
    users: Sequence[str],
    labels: dict[str, str],
) -> dict[str, Any]:
    pool = config.pools[group.pool]
    size = {"cpu": group.cpu, "memory": group.memory}
    limits = dict(size)
    accelerators = group.gpu or group.npu
    if accelerators and pool.accelerator:
        limits[pool.accelerator.resource] = str(accelerators)
    spec: dict[str, Any] = {
        "groupName": group.name,
        "replicas": group.min_replicas,
        "minReplicas": group.min_replicas,
        "maxReplicas": group.max_replicas,
        "rayStartParams": _ray_start_params(config, group),
        "template": _pod(
            container="ray-worker",
            image=group.image or config.default_image,
            limits=limits,
            requests=size,
            pool=pool,
            volumes=_volumes(config, project, users),
            labels=labels,
        ),
    }
    if group.idle_timeout_seconds is not None:
        spec["idleTimeoutSeconds"] = group.idle_timeout_seconds
    return spec
