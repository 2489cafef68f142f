"""The embedded default's backend: every project shares the one local Ray head.

Projects are told apart by the metadata Fabric puts on each job; the platform, not Ray, keeps
one project's jobs from another's.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fabric.backends.base import ClusterInfo, Feature, JobSpec, JobState, Runner
from fabric.backends.local_head import LocalRayHead
from fabric.backends.ray_jobs import RayJobsApi, fabric_resources
from fabric.backends.warm import WarmRunner, is_warm
from fabric.runtime.serve_contract import ServeStatus, read_status
from fabric.states import EndpointStatus


class LocalRayBackend:
    features = frozenset({Feature.JOBS, Feature.SERVE, Feature.DASHBOARD, Feature.WARM_TASKS})

    def __init__(self, head: LocalRayHead) -> None:
        self.head = head
        self.api = RayJobsApi(head.dashboard_url, head.auth_headers())
        self._serve_lock = threading.Lock()
        self._node_sizes: list[dict[str, float]] | None = None
        settings = head.settings
        llm = settings.llm_executable
        self.llm_python = str(llm) if llm is not None and llm.exists() else None
        self.warm = WarmRunner(
            self.api, settings.home / "warm-runner", settings.warm_runner_idle_seconds
        )

    def close(self) -> None:
        self.api.close()

    def version(self) -> str:
        return self.head.version()

    def cluster(self, project: str) -> ClusterInfo:
        alive = [node for node in self.api.nodes() if node["state"] == "ALIVE"]
        return ClusterInfo(
            ray_version=self.api.version(),
            dashboard_url=self.head.dashboard_url,
            resources=fabric_resources(node["resources_total"] for node in alive),
        )

    def node_sizes(self, project: str, pool: str | None) -> list[dict[str, float]]:
        # The head's nodes do not change while it lives: asked once.
        if self._node_sizes is None:
            alive = [node for node in self.api.nodes() if node["state"] == "ALIVE"]
            self._node_sizes = [fabric_resources([node["resources_total"]]) for node in alive]
        return self._node_sizes

    def ensure_package(self, project: str, uri: str, path: Path) -> None:
        self.api.ensure_package(uri, path)

    def submit_job(self, project: str, spec: JobSpec) -> str:
        return self.warm.submit(spec) if spec.runner is Runner.WARM else self.api.submit(spec)

    def _jobs(self, submission_id: str) -> RayJobsApi | WarmRunner:
        """Who runs the job: its own Ray Job, or the warm runner."""
        return self.warm if is_warm(submission_id) else self.api

    def job_state(self, project: str, submission_id: str) -> JobState:
        return self._jobs(submission_id).state(submission_id)

    def stop_job(self, project: str, submission_id: str) -> bool:
        return self._jobs(submission_id).stop(submission_id)

    def job_logs(self, project: str, submission_id: str) -> str:
        return self._jobs(submission_id).logs(submission_id)

    def follow_job_logs(self, project: str, submission_id: str) -> Iterator[str]:
        return self._jobs(submission_id).follow_logs(submission_id)

    def apply_serve_config(self, project: str, applications: list[dict[str, Any]]) -> None:
        """Serve's config is the whole head's: keep the other projects' applications as Serve
        has them, under a lock so that two projects' changes never overwrite each other.

        An application Serve is still deleting is left out: put back in the config, it would
        be deployed again, and its replicas would hold their CPUs with no endpoint left to
        own them."""
        with self._serve_lock:
            deployed = self.api.serve_applications()
            others = [
                app["deployed_app_config"]
                for name, app in deployed.items()
                if not name.startswith(f"{project}.")
                and app.get("deployed_app_config")
                and app.get("status") != EndpointStatus.DELETING
            ]
            port = self.head.settings.ray_serve_port
            self.api.apply_serve(
                {
                    "http_options": {"host": "127.0.0.1", "port": port},
                    "applications": [*others, *applications],
                }
            )

    def serve_status(self, project: str) -> ServeStatus:
        return read_status(
            {
                name: app
                for name, app in self.api.serve_applications().items()
                if name.startswith(f"{project}.")
            }
        )

    def serve_address(self, project: str) -> str:
        return f"http://127.0.0.1:{self.head.settings.ray_serve_port}"

    def dashboard(self, project: str) -> tuple[str, dict[str, str]]:
        return self.head.dashboard_url, self.head.auth_headers()

    # Projects share the one head, which lives as long as the server: nothing to free.
    def release(self, project: str) -> None:
        return None

    def release_idle(self) -> list[str]:
        return []
