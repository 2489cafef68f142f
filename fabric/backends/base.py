"""The contract every compute backend meets, and the features one may lack.

A backend owns a project's Ray cluster and speaks to it; the services decide what runs and
the backend makes it run. Features a backend lacks are declared up front, so a request that
needs one fails with a clear message before anything starts.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol


class Feature(StrEnum):
    JOBS = "jobs"
    SERVE = "serve"
    DASHBOARD = "dashboard"
    AUTOSCALING = "autoscaling"
    GPU = "gpu"
    NPU = "npu"
    WARM_TASKS = "warm-tasks"


class JobStatus(StrEnum):
    """Ray's job states; Fabric adds its own (QUEUED) before a job reaches the backend."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    STOPPED = "STOPPED"

    @property
    def terminal(self) -> bool:
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED)


@dataclass(frozen=True)
class JobSpec:
    """What to run: Ray's Jobs API fields, with resources in Fabric's units."""

    submission_id: str
    entrypoint: str
    runtime_env: dict[str, Any] = field(default_factory=dict)
    cpu: float = 0.0
    memory_gib: float = 0.0
    gpu: float = 0.0
    custom_resources: dict[str, float] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    # The project's pool the job asked for; a backend with pools runs its driver there.
    pool: str | None = None
    # Run by the warm runner rather than as a Ray Job of its own (Feature.WARM_TASKS).
    warm: bool = False


@dataclass(frozen=True)
class JobState:
    status: JobStatus
    message: str = ""
    start_time: float | None = None
    end_time: float | None = None


@dataclass(frozen=True)
class ClusterInfo:
    ray_version: str
    dashboard_url: str
    # What the cluster's live nodes offer, in Fabric's units (cpu, memory in GiB, gpu, ...).
    resources: dict[str, float]


class BackendUnavailable(Exception):
    """The project's cluster cannot be reached; the message says what to do."""


class ClusterStarting(BackendUnavailable):
    """The project's cluster is coming up: what needs it waits and tries again shortly."""


class ComputeBackend(Protocol):
    features: frozenset[Feature]

    def version(self) -> str:
        """The Ray version of the platform's cluster; BackendUnavailable when it is down."""
        ...

    def cluster(self, project: str) -> ClusterInfo:
        """The project's cluster as it is now; BackendUnavailable when it does not answer."""
        ...

    def ensure_package(self, project: str, uri: str, path: Path) -> None:
        """Make the code package `uri` (a `gcs://` name) available to the project's cluster."""
        ...

    def submit_job(self, project: str, spec: JobSpec) -> str: ...

    def job_state(self, project: str, submission_id: str) -> JobState: ...

    def stop_job(self, project: str, submission_id: str) -> bool: ...

    def job_logs(self, project: str, submission_id: str) -> str: ...

    def follow_job_logs(self, project: str, submission_id: str) -> Iterator[str]: ...

    def apply_serve_config(self, project: str, applications: list[dict[str, Any]]) -> None:
        """Make the project's Serve applications exactly these (Serve's declarative config);
        other projects' applications on a shared head stay as they are."""
        ...

    def serve_status(self, project: str) -> dict[str, dict[str, Any]]:
        """The project's Serve applications as Serve reports them, by application name."""
        ...

    def serve_address(self, project: str) -> str:
        """The base URL of the project's Serve HTTP ingress, as the server reaches it."""
        ...

    def dashboard(self, project: str) -> tuple[str, dict[str, str]]:
        """The dashboard's base URL and the headers that authenticate Fabric to it."""
        ...

    def release(self, project: str) -> None:
        """Free what the project holds on the compute side, as the project is deleted."""
        ...

    def release_idle(self) -> list[str]:
        """Free the clusters of projects idle for long; the projects whose cluster went."""
        ...
