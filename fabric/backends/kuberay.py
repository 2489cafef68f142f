"""The KubeRay backend: one Ray cluster per project on Kubernetes, brought up on first use.

Jobs go through the project's cluster's own Jobs API (its head service, with the cluster's
token), not as RayJob objects: the cluster is already warm, so a job starts in about a second
rather than after a submitter pod and a status round trip through the operator; and status,
logs, stop and the Ray Jobs door are the very code the local backend runs. Serve configs go
to the same cluster's Serve API for the same reason: a RayService would bring up a second
cluster beside the project's. (`kuberay.resources` still builds RayJob and RayService objects
for teams that want an ephemeral cluster per job or Serve's zero-downtime cluster upgrades.)

A cluster that is still starting answers `ClusterStarting`: a job waits admitted and is
submitted on a later pass, instead of holding a request or the reconciler for minutes.
"""

from __future__ import annotations

import base64
import logging
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from fabric.backends.base import (
    BackendError,
    BackendRefused,
    BackendUnavailable,
    ClusterInfo,
    ClusterStarting,
    Feature,
    JobSpec,
    JobState,
)
from fabric.backends.ray_jobs import RayJobsApi, fabric_resources
from fabric.runtime import environment
from fabric.runtime.serve_contract import ServeStatus, read_status
from kuberay import resources
from kuberay.client import KubeApi, KubeError
from kuberay.config import ClusterConfig
from kuberay.pods import pool_resource
from kuberay.site import (
    DASHBOARD_PORT,
    MANAGED_BY,
    PROJECT_LABEL,
    SERVE_PORT,
    TOKEN_SECRET,
    Site,
    cluster_name,
    project_mount,
    user_mount,
)

log = logging.getLogger("fabric.kuberay")
# A job's driver asks this much of its pool's marker resource: enough to pin it there.
POOL_SHARE = 0.001
READY = "ready"


class KubeRayBackend:
    def __init__(
        self,
        kube: KubeApi,
        config: ClusterConfig,
        site: Site,
        members: Callable[[str], Sequence[str]],
        storage_root: Path,
        *,
        ready_timeout_seconds: float = 900,
        idle_seconds: float = 3600,
        jobs_api: Callable[[str, dict[str, str]], RayJobsApi] = RayJobsApi,
        clock: Callable[[], float] = time.monotonic,
        llm_python: str | None = None,
    ) -> None:
        self.kube = kube
        self.config = config
        self.site = site
        self._members = members
        self._storage_root = storage_root
        self._ready_timeout = ready_timeout_seconds
        self._idle = idle_seconds
        self._jobs_api = jobs_api
        # Each ready cluster's Serve ingress (its head service), found with its Jobs API.
        self._serve_urls: dict[str, str] = {}
        self._clock = clock
        self.llm_python = llm_python
        self._apis: dict[str, RayJobsApi] = {}
        self._starting: dict[str, float] = {}
        self._used: dict[str, float] = {}
        self._laid: dict[str, tuple[str, ...]] = {}
        self._adopted = False
        self.features = frozenset(
            {Feature.JOBS, Feature.SERVE, Feature.DASHBOARD, Feature.AUTOSCALING}
            | {Feature.GPU for group in config.worker_groups if group.gpu}
            | {Feature.NPU for group in config.worker_groups if group.npu}
        )

    def close(self) -> None:
        for api in self._apis.values():
            api.close()

    # Bringing a project's cluster up.

    def _token(self, project: str) -> str:
        """The cluster's Ray token: made once by Fabric, kept in the project's Secret."""
        namespace = self.site.namespace(project)
        secret = self.kube.get("Secret", namespace, TOKEN_SECRET)
        if secret is None:
            manifest = resources.token_secret(
                project, self.config, self.site, secrets.token_urlsafe(32)
            )
            secret = self.kube.ensure(manifest)
        return base64.b64decode(secret["data"]["auth_token"]).decode()

    def _ensure_cluster(self, project: str, users: Sequence[str]) -> dict[str, Any]:
        """The project's RayCluster, created, or patched when the config or members changed."""
        wanted = resources.ray_cluster(project, self.config, self.site, users)
        namespace, name = self.site.namespace(project), cluster_name(project)
        found = self.kube.get("RayCluster", namespace, name)
        if found is None:
            log.info("creating the Ray cluster of project %s", project)
            return self.kube.ensure(wanted)
        annotations = found.get("metadata", {}).get("annotations") or {}
        if (
            annotations.get(resources.DIGEST_ANNOTATION)
            != wanted["metadata"]["annotations"][resources.DIGEST_ANNOTATION]
        ):
            log.info("updating the Ray cluster of project %s", project)
            patch = {"metadata": {"annotations": wanted["metadata"]["annotations"]}}
            spec = _keeping_replicas(wanted["spec"], found.get("spec") or {})
            return self.kube.patch("RayCluster", namespace, name, {**patch, "spec": spec})
        return found

    def _head_report(self, project: str) -> str:
        """Why the head is not up, from its pod: phase, unmet conditions, waiting containers."""
        pods = self.kube.list(
            "Pod",
            self.site.namespace(project),
            f"ray.io/cluster={cluster_name(project)},ray.io/node-type=head",
        )
        if not pods:
            return "no head pod yet"
        status = pods[0].get("status") or {}
        parts = [f"head pod {pods[0]['metadata']['name']} is {status.get('phase', 'Unknown')}"]
        for condition in status.get("conditions") or []:
            if condition.get("status") != "True":
                why = f"{condition.get('reason') or ''} {condition.get('message') or ''}"
                parts.append(f"{condition['type']}: {why.strip()}")
        for container in status.get("containerStatuses") or []:
            waiting = (container.get("state") or {}).get("waiting")
            if waiting:
                parts.append(f"{container['name']} waiting: {waiting.get('reason', '')}")
        return "; ".join(parts)

    def _bring_up(self, project: str) -> tuple[str, dict[str, Any]]:
        """Everything the project's cluster needs, then the cluster: its token and object."""
        users = tuple(self._members(project))
        # Asked every few seconds while the cluster starts: the foundation is laid once per
        # set of members, not on every ask.
        if self._laid.get(project) != users:
            for manifest in resources.foundation(project, self.config, self.site, users):
                self.kube.ensure(manifest)
            self._laid[project] = users
        return self._token(project), self._ensure_cluster(project, users)

    def _existing(self, project: str) -> tuple[str, dict[str, Any]]:
        """The cluster as it is, never created: asking about a job must not start one."""
        found = self.kube.get("RayCluster", self.site.namespace(project), cluster_name(project))
        if found is None:
            raise BackendUnavailable(f"project {project!r} has no Ray cluster now")
        return self._token(project), found

    def _check_ready(self, project: str, cluster: dict[str, Any]) -> None:
        """ClusterStarting while the cluster comes up; BackendUnavailable once it took too long."""
        if (cluster.get("status") or {}).get("state") == READY:
            self._starting.pop(project, None)
            return
        first_seen = self._starting.setdefault(project, self._clock())
        report = self._head_report(project)
        if self._clock() - first_seen > self._ready_timeout:
            del self._starting[project]
            raise BackendUnavailable(
                f"the Ray cluster of project {project!r} was not ready after "
                f"{self._ready_timeout:g} s: {report}"
            )
        raise ClusterStarting(f"the Ray cluster of project {project!r} is starting: {report}")

    def _api(self, project: str, *, start: bool = True) -> RayJobsApi:
        """The Jobs API of the project's ready cluster; ClusterStarting while it comes up."""
        self._used[project] = self._clock()
        if project in self._apis:
            return self._apis[project]
        try:
            token, cluster = self._bring_up(project) if start else self._existing(project)
            self._check_ready(project, cluster)
        except KubeError as exc:
            raise BackendUnavailable(f"Kubernetes: {exc}") from exc
        head = (cluster.get("status") or {}).get("head") or {}
        service = head.get("serviceName") or f"{cluster_name(project)}-head-svc"
        host = f"{service}.{self.site.namespace(project)}.svc"
        url = f"http://{host}:{DASHBOARD_PORT}"
        self._serve_urls[project] = f"http://{host}:{SERVE_PORT}"
        api = self._apis[project] = self._jobs_api(url, {"Authorization": f"Bearer {token}"})
        return api

    def _forget_on_failure(self, project: str, call: Callable[[RayJobsApi], Any]) -> Any:
        """Run a Ray call; a cluster that stopped answering is looked up afresh next time."""
        api = self._api(project, start=False)
        try:
            return call(api)
        except BackendUnavailable:
            self._apis.pop(project, None)
            api.close()
            raise

    # The ComputeBackend protocol.

    def version(self) -> str:
        """The clusters' Ray version, once Kubernetes answers (the server's readiness)."""
        try:
            self.kube.get("Namespace", None, self.site.server_namespace)
        except KubeError as exc:
            raise BackendUnavailable(f"Kubernetes: {exc}") from exc
        return self.config.ray_version

    def _on_cluster(self, spec: JobSpec) -> JobSpec:
        """The job as the cluster sees it: the server's storage folders are the pods' mounts
        (`/mnt/USER`, `/mnt/projects/PROJECT`), and the server is its Service."""
        env = {
            name: self._on_pods(value)
            for name, value in spec.runtime_env.get("env_vars", {}).items()
        }
        if environment.URL in env:
            env[environment.URL] = self.site.server_url
        cwd = self._on_pods(spec.cwd) if spec.cwd else None
        return replace(spec, runtime_env={**spec.runtime_env, "env_vars": env}, cwd=cwd)

    def _on_pods(self, path: str) -> str:
        """A path of the server's storage as the pods mount it; any other value as it is."""
        mounts = {
            self._storage_root / "projects": project_mount(""),
            self._storage_root / "users": user_mount(""),
        }
        for folder, mount in mounts.items():
            if path == str(folder) or path.startswith(f"{folder}/"):
                return mount.rstrip("/") + path[len(str(folder)) :]
        return path

    def cluster(self, project: str) -> ClusterInfo:
        api = self._api(project)
        alive = [node for node in api.nodes() if node["state"] == "ALIVE"]
        return ClusterInfo(
            ray_version=api.version(),
            dashboard_url=api.base_url,
            resources=fabric_resources(node["resources_total"] for node in alive),
        )

    def node_sizes(self, project: str, pool: str | None) -> list[dict[str, float]]:
        # The head runs no work (num-cpus 0); a job without a pool may land on any group.
        groups = self.config.worker_groups if pool is None else self.config.groups_of(pool)
        return [group.offers() for group in groups]

    def ensure_package(self, project: str, uri: str, path: Path) -> None:
        self._api(project).ensure_package(uri, path)

    def submit_job(self, project: str, spec: JobSpec) -> str:
        if spec.pool is not None:
            if not self.config.groups_of(spec.pool):
                raise BackendRefused(
                    f"pool {spec.pool!r} has no worker group in cluster config "
                    f"{self.config.name!r}; its pools are: {', '.join(sorted(self.config.pools))}"
                )
            marker = {pool_resource(spec.pool): POOL_SHARE}
            spec = replace(spec, custom_resources={**spec.custom_resources, **marker})
        return self._api(project).submit(self._on_cluster(spec))

    def job_state(self, project: str, submission_id: str) -> JobState:
        return self._forget_on_failure(project, lambda api: api.state(submission_id))

    def stop_job(self, project: str, submission_id: str) -> bool:
        return self._forget_on_failure(project, lambda api: api.stop(submission_id))

    def job_logs(self, project: str, submission_id: str) -> str:
        return self._forget_on_failure(project, lambda api: api.logs(submission_id))

    def follow_job_logs(self, project: str, submission_id: str) -> Iterator[str]:
        return self._api(project, start=False).follow_logs(submission_id)

    def apply_serve_config(self, project: str, applications: list[dict[str, Any]]) -> None:
        # The cluster is the project's own: its Serve config is the project's alone.
        http = {"host": "0.0.0.0", "port": SERVE_PORT}
        on_pods = [{**app, "args": self._args_on_pods(app.get("args", {}))} for app in applications]
        self._api(project).apply_serve({"http_options": http, "applications": on_pods})

    def _args_on_pods(self, value: Any) -> Any:
        """An application's args with every storage path in them (model artifacts) as the
        replicas' pods mount it."""
        if isinstance(value, str):
            return self._on_pods(value)
        if isinstance(value, dict):
            return {key: self._args_on_pods(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self._args_on_pods(item) for item in value]
        return value

    def serve_status(self, project: str) -> ServeStatus:
        return self._forget_on_failure(project, lambda api: read_status(api.serve_applications()))

    def serve_address(self, project: str) -> str:
        self._api(project)
        return self._serve_urls[project]

    def dashboard(self, project: str) -> tuple[str, dict[str, str]]:
        api = self._api(project)
        return api.base_url, dict(api.headers)

    def scale(self, project: str, group: str, minimum: int) -> None:
        """Keep at least `minimum` workers of a group up (e.g. warm for busy hours); the
        autoscaler still adds more up to the group's maximum. The config's minimum comes back
        when the cluster is next updated from the config."""
        namespace, name = self.site.namespace(project), cluster_name(project)
        try:
            found = self.kube.get("RayCluster", namespace, name)
            if found is None:
                raise BackendUnavailable(f"project {project!r} has no Ray cluster now")
            groups = found["spec"]["workerGroupSpecs"]
            known = [g["groupName"] for g in groups]
            if group not in known:
                raise BackendRefused(
                    f"no worker group {group!r} in the cluster of project {project!r}; "
                    f"its groups are: {', '.join(known)}"
                )
            target = next(g for g in groups if g["groupName"] == group)
            if not 0 <= minimum <= target["maxReplicas"]:
                raise BackendRefused(
                    f"worker group {group!r} scales between 0 and {target['maxReplicas']}, "
                    f"not to {minimum}"
                )
            scaled = [
                {**g, "minReplicas": minimum, "replicas": max(g.get("replicas") or 0, minimum)}
                if g["groupName"] == group
                else g
                for g in groups
            ]
            self.kube.patch("RayCluster", namespace, name, {"spec": {"workerGroupSpecs": scaled}})
        except KubeError as exc:
            raise BackendUnavailable(f"Kubernetes: {exc}") from exc

    def release(self, project: str) -> None:
        """Delete the project's namespace, and with it its cluster, volumes and token."""
        self._starting.pop(project, None)
        self._used.pop(project, None)
        self._laid.pop(project, None)
        api = self._apis.pop(project, None)
        if api is not None:
            api.close()
        namespace = self.site.namespace(project)
        try:
            found = self.kube.get("Namespace", None, namespace)
            labels = (found or {}).get("metadata", {}).get("labels") or {}
            if found is not None and all(labels.get(k) == v for k, v in MANAGED_BY.items()):
                self.kube.delete("Namespace", None, namespace)
        except KubeError as exc:
            raise BackendUnavailable(f"Kubernetes: {exc}") from exc

    def _adopt(self) -> None:
        """Once per server: the clusters an earlier server made count as used now, so they
        too are released once idle rather than forgotten."""
        if self._adopted:
            return
        selector = ",".join(f"{key}={value}" for key, value in MANAGED_BY.items())
        try:
            namespaces = self.kube.list("Namespace", None, selector)
        except KubeError as exc:
            raise BackendUnavailable(f"Kubernetes: {exc}") from exc
        for namespace in namespaces:
            project = (namespace["metadata"].get("labels") or {}).get(PROJECT_LABEL)
            if project:
                self._used.setdefault(project, self._clock())
        self._adopted = True

    def release_idle(self) -> list[str]:
        """Delete the clusters no call has used for the idle time and that run nothing.

        Volumes and the token stay: the next job brings the same cluster back on them.
        """
        self._adopt()
        now = self._clock()
        released = []
        for project, used in list(self._used.items()):
            if now - used < self._idle:
                continue
            try:
                api = self._api(project, start=False)
                if api.busy():
                    self._used[project] = now
                    continue
                self.kube.delete("RayCluster", self.site.namespace(project), cluster_name(project))
            except ClusterStarting:
                continue
            except (BackendError, KubeError) as exc:
                if project not in self._apis:  # no cluster any more: nothing to release
                    del self._used[project]
                    continue
                log.warning("cannot release the idle cluster of project %s: %s", project, exc)
                continue
            log.info("released the idle Ray cluster of project %s", project)
            del self._apis[project], self._used[project]
            api.close()
            released.append(project)
        return released


def _keeping_replicas(wanted: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    """The new spec with each worker group's replicas as the autoscaler has set them: a merge
    patch replaces the list whole, and would otherwise scale busy groups back to their min."""
    now = {group["groupName"]: group for group in current.get("workerGroupSpecs") or []}
    groups = []
    for group in wanted["workerGroupSpecs"]:
        running = now.get(group["groupName"], {}).get("replicas")
        if running is not None:
            replicas = min(max(running, group["minReplicas"]), group["maxReplicas"])
            group = {**group, "replicas": replicas}
        groups.append(group)
    return {**wanted, "workerGroupSpecs": groups}
