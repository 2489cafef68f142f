"""The Kubernetes objects of one project, as plain dicts: pure functions of their inputs.

Per project: a Namespace holding a Secret (the Ray cluster's token), the user and project
PersistentVolumeClaims, a NetworkPolicy, and the RayCluster; RayJob and RayService objects
come from a job or from the project's Serve config.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from typing import Any

import yaml

from kuberay.config import ClusterConfig
from kuberay.pods import head_group, worker_group
from kuberay.site import (
    DASHBOARD_PORT,
    MANAGED_BY,
    PROJECT_LABEL,
    SERVE_PORT,
    TOKEN_SECRET,
    Site,
    cluster_name,
    labels,
    project_claim,
    user_claim,
)

RAY_API = "ray.io/v1"
DIGEST_ANNOTATION = "fabric.ai/config-digest"


def _metadata(
    name: str, namespace: str | None, project: str, config: ClusterConfig
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": labels(project, config.name)}
    if namespace is not None:
        meta["namespace"] = namespace
    return meta


def namespace(project: str, config: ClusterConfig, site: Site) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": _metadata(site.namespace(project), None, project, config),
    }


def token_secret(project: str, config: ClusterConfig, site: Site, token: str) -> dict[str, Any]:
    """The token Ray demands on every request (`authOptions.secretName` names this Secret)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": _metadata(TOKEN_SECRET, site.namespace(project), project, config),
        "data": {"auth_token": base64.b64encode(token.encode()).decode()},
    }


def claims(
    project: str, config: ClusterConfig, site: Site, users: Sequence[str]
) -> list[dict[str, Any]]:
    """The project's and each member's volume; none where the config shares no storage."""
    storage = config.storage
    if not storage.shared:
        return []
    wanted = [(project_claim(project), storage.project_size)]
    wanted += [(user_claim(user), storage.user_size) for user in sorted(users)]
    found = []
    for name, size in wanted:
        spec: dict[str, Any] = {
            "accessModes": [storage.access_mode],
            "resources": {"requests": {"storage": size}},
        }
        if storage.storage_class:
            spec["storageClassName"] = storage.storage_class
        found.append(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": _metadata(name, site.namespace(project), project, config),
                "spec": spec,
            }
        )
    return found


def network_policy(project: str, config: ClusterConfig, site: Site) -> dict[str, Any]:
    """Ray's dashboard and Jobs API run code for whoever reaches them: only Fabric may.

    The project's own pods still talk to each other freely (Ray needs every port between
    nodes); from outside the namespace only the Fabric server reaches the head's dashboard
    and Serve ports.
    """
    fabric_server = {
        "namespaceSelector": {
            "matchLabels": {"kubernetes.io/metadata.name": site.server_namespace}
        },
        "podSelector": {"matchLabels": dict(site.server_labels)},
    }
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _metadata("ray-head-ingress", site.namespace(project), project, config),
        "spec": {
            "podSelector": {"matchLabels": {PROJECT_LABEL: project}},
            "policyTypes": ["Ingress"],
            "ingress": [
                {"from": [{"podSelector": {}}]},
                {
                    "from": [fabric_server],
                    "ports": [
                        {"protocol": "TCP", "port": DASHBOARD_PORT},
                        {"protocol": "TCP", "port": SERVE_PORT},
                    ],
                },
            ],
        },
    }


def foundation(
    project: str, config: ClusterConfig, site: Site, users: Sequence[str]
) -> list[dict[str, Any]]:
    """What the project's cluster stands on, in the order they must exist (not the token:
    its value is made once, by whoever creates it)."""
    return [
        namespace(project, config, site),
        *claims(project, config, site, users),
        network_policy(project, config, site),
    ]


def cluster_spec(config: ClusterConfig, project: str, users: Sequence[str]) -> dict[str, Any]:
    """A RayCluster's spec; RayJob and RayService embed the same one."""
    pod_labels = {**MANAGED_BY, PROJECT_LABEL: project}
    return {
        "rayVersion": config.ray_version,
        "enableInTreeAutoscaling": True,
        "autoscalerOptions": {
            "version": "v2",
            "idleTimeoutSeconds": config.autoscaling.idle_timeout_seconds,
            "upscalingMode": config.autoscaling.upscaling_mode,
        },
        "authOptions": {"mode": "token", "secretName": TOKEN_SECRET},
        "headGroupSpec": head_group(config, project, users, pod_labels),
        "workerGroupSpecs": [
            worker_group(config, group, project, users, pod_labels)
            for group in config.worker_groups
        ],
    }


def digest(spec: dict[str, Any]) -> str:
    """A short fingerprint of a spec, so the backend can tell when a cluster is out of date."""
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def ray_cluster(
    project: str, config: ClusterConfig, site: Site, users: Sequence[str]
) -> dict[str, Any]:
    spec = cluster_spec(config, project, users)
    metadata = _metadata(cluster_name(project), site.namespace(project), project, config)
    metadata["annotations"] = {DIGEST_ANNOTATION: digest(spec)}
    return {"apiVersion": RAY_API, "kind": "RayCluster", "metadata": metadata, "spec": spec}


def ray_job(
    project: str,
    config: ClusterConfig,
    site: Site,
    *,
    submission_id: str,
    entrypoint: str,
    runtime_env: dict[str, Any],
    resources: dict[str, float],
    metadata: dict[str, str],
    timeout_seconds: int | None = None,
    users: Sequence[str] | None = None,
) -> dict[str, Any]:
    """A RayJob: on the project's standing cluster, or with `users` on a cluster of its own.

    `resources` are Ray's names for the driver (CPU, GPU, others). An ephemeral cluster
    (`users` given) shuts down when the job ends and lingers `job_ttl_seconds` for its logs.
    """
    cpu, gpu = resources.get("CPU", 0.0), resources.get("GPU", 0.0)
    others = {name: amount for name, amount in resources.items() if name not in ("CPU", "GPU")}
    spec: dict[str, Any] = {
        "jobId": submission_id,
        "entrypoint": entrypoint,
        "submissionMode": "HTTPMode",
        "metadata": dict(metadata),
        "entrypointNumCpus": cpu,
        "entrypointNumGpus": gpu,
    }
    if runtime_env:
        spec["runtimeEnvYAML"] = yaml.safe_dump(runtime_env, sort_keys=True)
    if others:
        spec["entrypointResources"] = json.dumps(others, sort_keys=True)
    if timeout_seconds is not None:
        spec["activeDeadlineSeconds"] = timeout_seconds
    if users is None:
        spec["clusterSelector"] = {"ray.io/cluster": cluster_name(project)}
    else:
        spec["rayClusterSpec"] = cluster_spec(config, project, users)
        spec["shutdownAfterJobFinishes"] = True
        spec["ttlSecondsAfterFinished"] = config.job_ttl_seconds
    name = submission_id.lower().replace("_", "-")
    return {
        "apiVersion": RAY_API,
        "kind": "RayJob",
        "metadata": _metadata(name, site.namespace(project), project, config),
        "spec": spec,
    }


def ray_service(
    project: str,
    config: ClusterConfig,
    site: Site,
    serve_config: dict[str, Any],
    users: Sequence[str],
) -> dict[str, Any]:
    """The project's Serve applications (Serve's declarative config) with a cluster of their own."""
    return {
        "apiVersion": RAY_API,
        "kind": "RayService",
        "metadata": _metadata(f"{project}-serve", site.namespace(project), project, config),
        "spec": {
            "serveConfigV2": yaml.safe_dump(serve_config, sort_keys=False),
            "rayClusterConfig": cluster_spec(config, project, users),
        },
    }
