"""What the builders need to know of the platform around them, and the names they derive.

The builders import nothing of `fabric`: the server turns its settings into a `Site`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

MANAGED_BY = {"app.kubernetes.io/managed-by": "fabric"}
PROJECT_LABEL = "fabric.ai/project"
CONFIG_LABEL = "fabric.ai/cluster-config"
TOKEN_SECRET = "ray-token"
DASHBOARD_PORT = 8265
SERVE_PORT = 8000
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


@dataclass(frozen=True)
class Site:
    namespace_prefix: str = "fabric-"
    # The Fabric server's pods: the only ones the clusters' network policy admits to the head.
    server_namespace: str = "fabric"
    server_labels: Mapping[str, str] = field(
        default_factory=lambda: {"app.kubernetes.io/name": "fabric-server"}
    )

    # Where jobs on the clusters reach the Fabric server (its Service in deploy/kubernetes).
    server_url: str = "http://fabric-server.fabric.svc:8080"

    def namespace(self, project: str) -> str:
        return f"{self.namespace_prefix}{project}"


def cluster_name(project: str) -> str:
    """The project's RayCluster, alone in its namespace; KubeRay derives `NAME-head-svc`."""
    return project


def labels(project: str, config_name: str) -> dict[str, str]:
    return {**MANAGED_BY, PROJECT_LABEL: project, CONFIG_LABEL: config_name}


def user_key(username: str) -> str:
    """A Kubernetes-safe name for a user: usernames may hold '_' and '.', object names not.

    A name that had to change gets a digest suffix, so `a_b` and `a-b` stay apart.
    """
    if _DNS_LABEL.match(username) and len(username) <= 40:
        return username
    safe = re.sub(r"[^a-z0-9-]", "-", username)[:30].strip("-")
    digest = hashlib.sha256(username.encode()).hexdigest()[:8]
    return f"{safe}-{digest}" if safe else digest


def user_mount(username: str) -> str:
    return f"/mnt/{username}"


def project_mount(project: str) -> str:
    return f"/mnt/projects/{project}"


def user_claim(username: str) -> str:
    return f"user-{user_key(username)}"


def project_claim(project: str) -> str:
    return f"project-{project}"
