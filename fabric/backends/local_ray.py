"""The embedded default's backend: every project shares the one local Ray head.

Projects are told apart by the metadata Fabric puts on each job; the platform, not Ray, keeps
one project's jobs from another's.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fabric.backends.base import ClusterInfo, Feature, JobSpec, JobState
from fabric.backends.local_head import LocalRayHead
from fabric.backends.ray_jobs import RayJobsApi, fabric_resources


class LocalRayBackend:
    features = frozenset({Feature.JOBS, Feature.SERVE, Feature.DASHBOARD})

    def __init__(self, head: LocalRayHead) -> None:
        self.head = head
        self.api = RayJobsApi(head.dashboard_url, head.auth_headers())

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

    def ensure_package(self, project: str, uri: str, path: Path) -> None:
        self.api.ensure_package(uri, path)

    def submit_job(self, project: str, spec: JobSpec) -> str:
        return self.api.submit(spec)

    def job_state(self, project: str, submission_id: str) -> JobState:
        return self.api.state(submission_id)

    def stop_job(self, project: str, submission_id: str) -> bool:
        return self.api.stop(submission_id)

    def job_logs(self, project: str, submission_id: str) -> str:
        return self.api.logs(submission_id)

    def follow_job_logs(self, project: str, submission_id: str) -> Iterator[str]:
        return self.api.follow_logs(submission_id)

    def apply_serve_config(self, project: str, config: dict[str, Any]) -> None:
        self.api.apply_serve(config)

    def dashboard(self, project: str) -> tuple[str, dict[str, str]]:
        return self.head.dashboard_url, self.head.auth_headers()
