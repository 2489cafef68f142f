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

from fabric.runtime.serve_contract import ServeStatus
from fabric.states import JobStatus


class Feature(StrEnum):
    JOBS = "jobs"
    SERVE = "serve"
    DASHBOARD = "dashboard"
    AUTOSCALING = "autoscaling"
    GPU = "gpu"
    NPU = "npu"
    WARM_TASKS = "warm-tasks"


class Runner(StrEnum):
    """What runs a job on the cluster: a Ray Job of its own, or a task of the warm runner, a
    long-lived Ray driver that spares light jobs a Ray Job's start-up (Feature.WARM_TASKS).

    The services choose from the backend's features; the backend alone knows how it tells
    its runners' jobs apart afterwards (by the submission id it hands back).
    """

    RAY_JOB = "ray-job"
    WARM = "warm"


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
    runner: Runner = Runner.RAY_JOB
    # The folder the entrypoint starts in, when no working_dir brings the job's code (Ray
    # would start it in the head's own folder, wherever the platform was started).
    cwd: str | None = None


@dataclass(frozen=True)
class JobState:
    # One of Ray's job states: never QUEUED, which is Fabric's own before a job is submitted.
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


# The errors a backend raises, and the only ones its callers catch: what it meets underneath
# (Ray's HTTP answers, Kubernetes' API) it turns into one of these.


class BackendError(Exception):
    """The backend could not do what was asked; the message says why."""


class BackendUnavailable(BackendError):
    """The project's cluster cannot be reached; the message says what to do."""


class ClusterStarting(BackendUnavailable):
    """The project's cluster is coming up: what needs it waits and tries again shortly."""


class BackendRefused(BackendError):
    """The cluster answered and refused the request (the message is Ray's own, or the
    backend's: a pool with no worker group); asking again the same way will not help."""


class ComputeBackend(Protocol):
    """A project's cluster, as the services use it.

    Every method fails with a BackendError only: BackendUnavailable when the cluster cannot
    be reached (ClusterStarting while it comes up), BackendRefused when it refuses.
    """

    features: frozenset[Feature]
    # The LLM environment's Python on the cluster's nodes (FABRIC_LLM_PYTHON, else the
    # checkout's `.venv-llm`): what llm endpoints run in; None when there is none.
    llm_python: str | None

    def version(self) -> str:
        """The Ray version of the platform's cluster; BackendUnavailable when it is down."""
        ...

    def cluster(self, project: str) -> ClusterInfo:
        """The project's cluster as it is now; BackendUnavailable when it does not answer."""
        ...

    def node_sizes(self, project: str, pool: str | None) -> list[dict[str, float]]:
        """What each kind of node a job for `pool` may run on offers (its driver, or one of
        its workers: Ray never splits one across nodes), in Fabric's units: the nodes the
        cluster has or can scale to. Empty when it cannot tell; BackendUnavailable when the
        cluster does not answer."""
        ...

    def ensure_package(self, project: str, uri: str, path: Path) -> None:
        """Make the code package `uri` (a `gcs://` name) available to the project's cluster."""
        ...

    def submit_job(self, project: str, spec: JobSpec) -> str:
        """Start the job on its runner; the id the backend knows it by from now on, which
        the calls below take (the spec's own, or one the backend makes of it)."""
        ...

    def job_state(self, project: str, submission_id: str) -> JobState: ...

    def stop_job(self, project: str, submission_id: str) -> bool: ...

    def job_logs(self, project: str, submission_id: str) -> str: ...

    def follow_job_logs(self, project: str, submission_id: str) -> Iterator[str]: ...

    def apply_serve_config(self, project: str, applications: list[dict[str, Any]]) -> None:
        """Make the project's Serve applications exactly these (Serve's declarative config);
        other projects' applications on a shared head stay as they are."""
        ...

    def serve_status(self, project: str) -> ServeStatus:
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
