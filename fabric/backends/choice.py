"""Which compute backend a server runs on, from its settings."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from fabric.backends.base import ComputeBackend
from fabric.backends.kuberay import KubeRayBackend
from fabric.backends.local_head import LocalRayHead
from fabric.backends.local_ray import LocalRayBackend
from fabric.config import Settings
from kuberay import client, config
from kuberay.site import Site


def make_backend(settings: Settings, members: Callable[[str], Sequence[str]]) -> ComputeBackend:
    """The local head by default; with FABRIC_BACKEND=kuberay, a cluster per project.

    `members` names a project's users: their folders are mounted into its cluster.
    A cluster config that does not hold stops the server here, with every error listed.
    """
    if settings.backend == "local":
        return LocalRayBackend(LocalRayHead(settings))
    assert settings.cluster_config is not None  # Settings refuses kuberay without one
    kubeconfig = str(settings.kubeconfig) if settings.kubeconfig else None
    return KubeRayBackend(
        client.KubeApi(client.connect(kubeconfig)),
        config.load(settings.cluster_config),
        Site(
            namespace_prefix=settings.kuberay_namespace_prefix,
            server_namespace=settings.kuberay_server_namespace,
            server_url=settings.kuberay_server_url
            or f"http://fabric-server.{settings.kuberay_server_namespace}.svc:{settings.port}",
        ),
        members,
        settings.storage_root,
        ready_timeout_seconds=settings.kuberay_ready_timeout_seconds,
        idle_seconds=settings.kuberay_idle_seconds,
        # A path in the Ray pods (an image with vLLM), which the server cannot check.
        llm_python=str(settings.llm_executable) if settings.llm_executable else None,
    )
