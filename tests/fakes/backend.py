"""A compute backend without Ray, for tests of the logic above the backend.

A job runs as a plain child process of the test, the way Ray's job supervisor runs an
entrypoint: a shell command in its own session, in the job's working folder, with its
runtime env's variables, packages and Python modules, its output in one log; like Ray, it
waits PENDING until the fake cluster's free resources fit it. A job for the warm runner runs
the same way and answers as the runner does. Serve's applications are
recorded and report RUNNING at once (or the failure a test asks for); the dashboard is a
page of its own on loopback. `tests/backends/test_contract.py` runs the same tests on this
and on the real local Ray backend, so what the services rely on, both do alike.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import signal
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from fabric.backends.base import (
    BackendRefused,
    BackendUnavailable,
    ClusterInfo,
    Feature,
    JobSpec,
    JobState,
    Runner,
)
from fabric.backends.ray_jobs import follow
from fabric.runtime.serve_contract import ServeStatus, read_status
from fabric.states import JobStatus

# What Ray's job supervisor writes and says (ray/dashboard/modules/job), and the warm runner.
RAY_LOG_HEADER = "Running entrypoint for job {id}: {entrypoint}\n"
RAY_PENDING = (
    "Job has not started yet. It may be waiting for resources "
    "(CPUs, GPUs, memory, custom resources) to become available."
)
RAY_RUNNING = "Job is currently running."
RAY_STOPPED = "Job was intentionally stopped."
RAY_FAILED = (
    "Job entrypoint command failed with exit code {code}, last available logs "
    "(truncated to 20,000 chars):\n{tail}"
)
RAY_FAILED_SILENT = "Job entrypoint command failed with exit code {code}. No logs available."
WARM_FAILED = "exited with code {code}"
WARM_STOPPED = "stopped"
# Ray's job supervisor waits this long after SIGTERM before it kills a stopped job.
STOP_WAIT_SECONDS = 3.0
# The runtime env fields a job's process can be given here; others need a real cluster.
# `py_executable` is the Python of the entrypoint itself here (templates name it there too).
RUNTIME_ENV = {"working_dir", "py_modules", "env_vars", "py_executable"}


@dataclass
class FakeJob:
    spec: JobSpec
    log: Path
    cwd: Path
    env: dict[str, str]
    start_time: float
    # None while it waits for resources.
    process: subprocess.Popen[bytes] | None = None
    end_time: float | None = None
    status: JobStatus = JobStatus.PENDING
    message: str = RAY_PENDING
    stopping: bool = False

    @property
    def needs(self) -> dict[str, float]:
        spec = self.spec
        return {
            "cpu": spec.cpu,
            "memory": spec.memory_gib,
            "gpu": spec.gpu,
            **spec.custom_resources,
        }


@dataclass
class FakeBackend:
    """Every project on one fake cluster of `resources`, as on the embedded local head."""

    folder: Path
    resources: dict[str, float] = field(default_factory=lambda: {"cpu": 2.0, "memory": 8.0})
    features: frozenset[Feature] = frozenset(
        {Feature.JOBS, Feature.SERVE, Feature.DASHBOARD, Feature.WARM_TASKS}
    )
    packages: dict[str, Path] = field(default_factory=dict)
    jobs: dict[str, FakeJob] = field(default_factory=dict)
    # Serve's applications by name, each as Serve reports it.
    applications: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Applications that a test wants to fail their deploy, with Serve's message.
    failing: dict[str, str] = field(default_factory=dict)
    # While set, Serve cannot be reached: a config applied now is not taken.
    serve_down: bool = False
    released: list[str] = field(default_factory=list)
    llm_python: str | None = None
    # Where Serve's ingress answers; by default nowhere (a test may stand in for it).
    serve_url: str = "http://127.0.0.1:9"

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._dashboard: ThreadingHTTPServer | None = None

    def close(self) -> None:
        for job in list(self.jobs.values()):
            if job.process is not None and job.process.poll() is None:
                _signal(job.process, signal.SIGKILL)
                job.process.wait()
        if self._dashboard is not None:
            self._dashboard.shutdown()
            self._dashboard.server_close()

    def version(self) -> str:
        return importlib.metadata.version("ray")

    def cluster(self, project: str) -> ClusterInfo:
        return ClusterInfo(self.version(), self._dashboard_url(), dict(self.resources))

    def node_sizes(self, project: str, pool: str | None) -> list[dict[str, float]]:
        return [dict(self.resources)]

    def ensure_package(self, project: str, uri: str, path: Path) -> None:
        self.packages.setdefault(uri, path)

    def submit_job(self, project: str, spec: JobSpec) -> str:
        unknown = set(spec.runtime_env) - RUNTIME_ENV
        if unknown:
            raise BackendRefused(f"the fake backend cannot set up runtime_env {sorted(unknown)}")
        with self._lock:
            if spec.submission_id in self.jobs:
                raise BackendRefused(
                    f"Job with submission_id {spec.submission_id} already exists. "
                    "Please use a different submission_id."
                )
            folder = self.folder / "jobs" / spec.submission_id
            folder.mkdir(parents=True)
            cwd, env = self._environment(spec, folder)
            log = folder / "driver.log"
            log.write_text(
                ""
                if spec.runner is Runner.WARM
                else RAY_LOG_HEADER.format(id=spec.submission_id, entrypoint=spec.entrypoint)
            )
            self.jobs[spec.submission_id] = FakeJob(spec, log, cwd, env, time.time())
            self._start_what_fits()
        return spec.submission_id

    def _start_what_fits(self) -> None:
        """Start the waiting jobs that the free resources fit, oldest first; under the lock."""
        free = dict(self.resources)
        for job in self.jobs.values():
            if job.status is JobStatus.RUNNING:
                for resource, amount in job.needs.items():
                    free[resource] = free.get(resource, 0.0) - amount
        for job in self.jobs.values():
            needs = job.needs
            if job.status is JobStatus.PENDING and all(
                amount <= free.get(resource, 0.0) + 1e-9 for resource, amount in needs.items()
            ):
                for resource, amount in needs.items():
                    free[resource] = free.get(resource, 0.0) - amount
                self._launch(job)

    def _launch(self, job: FakeJob) -> None:
        with job.log.open("ab") as output:
            job.process = subprocess.Popen(
                job.spec.entrypoint,
                shell=True,
                start_new_session=True,
                cwd=job.cwd,
                env=job.env,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        job.status = JobStatus.RUNNING
        job.message = "" if job.spec.runner is Runner.WARM else RAY_RUNNING
        threading.Thread(target=self._watch, args=(job, job.process), daemon=True).start()

    def _watch(self, job: FakeJob, process: subprocess.Popen[bytes]) -> None:
        """Record the job's end as its process exits, and start what its resources fit."""
        code = process.wait()
        with self._lock:
            _ended(job, code)
            self._start_what_fits()

    def _environment(self, spec: JobSpec, folder: Path) -> tuple[Path, dict[str, str]]:
        """The job's working folder and variables, as Ray's runtime env makes them."""
        env_vars = spec.runtime_env.get("env_vars", {})
        cwd = folder / "cwd"
        if spec.runtime_env.get("working_dir"):
            cwd = self._unpack(spec.runtime_env["working_dir"], folder / "working_dir")
        elif spec.cwd:
            cwd = Path(spec.cwd)
        cwd.mkdir(parents=True, exist_ok=True)
        modules = [
            str(self._unpack(uri, folder / "py_modules" / str(index)))
            for index, uri in enumerate(spec.runtime_env.get("py_modules", []))
        ]
        env = {key: value for key, value in os.environ.items() if not key.startswith("RAY_")}
        # `python` in a job is the Python the cluster runs on, as on the local head.
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        if modules:
            env["PYTHONPATH"] = os.pathsep.join([*modules, env.get("PYTHONPATH", "")])
        env.update(env_vars)
        return cwd, env

    def _unpack(self, uri: str, target: Path) -> Path:
        if uri not in self.packages:
            raise BackendRefused(f"Package {uri} does not exist")
        with zipfile.ZipFile(self.packages[uri]) as archive:
            archive.extractall(target)
        return target

    def _job(self, submission_id: str) -> FakeJob:
        job = self.jobs.get(submission_id)
        if job is None:
            raise BackendRefused(f"Job {submission_id} does not exist")
        return job

    def job_state(self, project: str, submission_id: str) -> JobState:
        job = self._job(submission_id)
        with self._lock:
            return JobState(job.status, job.message, job.start_time, job.end_time)

    def stop_job(self, project: str, submission_id: str) -> bool:
        job = self._job(submission_id)
        with self._lock:
            if job.process is None and job.status is JobStatus.PENDING:
                job.stopping = True
                _ended(job, -signal.SIGTERM)
                return True
        if job.process is None or job.process.poll() is not None:
            # Ray answers whether the job still ran; the warm runner takes every request.
            return job.spec.runner is Runner.WARM
        job.stopping = True
        _signal(job.process, signal.SIGTERM)
        threading.Thread(target=_kill_late, args=(job.process,), daemon=True).start()
        return True

    def job_logs(self, project: str, submission_id: str) -> str:
        return self._job(submission_id).log.read_text(errors="replace")

    def follow_job_logs(self, project: str, submission_id: str) -> Iterator[str]:
        return follow(
            lambda: self.job_state(project, submission_id),
            lambda: self.job_logs(project, submission_id),
        )

    def apply_serve_config(self, project: str, applications: list[dict[str, Any]]) -> None:
        if self.serve_down:
            raise BackendUnavailable("Ray Serve did not answer")
        with self._lock:
            for name in [name for name in self.applications if name.startswith(f"{project}.")]:
                del self.applications[name]
            for app in applications:
                self.applications[app["name"]] = self._serve_app(app)

    def _serve_app(self, app: dict[str, Any]) -> dict[str, Any]:
        message = self.failing.get(app["name"])
        status, health = ("DEPLOY_FAILED", "UNHEALTHY") if message else ("RUNNING", "HEALTHY")
        return {
            "name": app["name"],
            "route_prefix": app.get("route_prefix"),
            "status": status,
            "message": message or "",
            "last_deployed_time_s": time.time(),
            "deployed_app_config": app,
            "deployments": {
                deployment["name"]: {"name": deployment["name"], "status": health, "message": ""}
                for deployment in app.get("deployments", [])
            },
        }

    def serve_status(self, project: str) -> ServeStatus:
        with self._lock:
            return read_status(
                {
                    name: app
                    for name, app in self.applications.items()
                    if name.startswith(f"{project}.")
                }
            )

    def serve_address(self, project: str) -> str:
        # By default nothing listens (port 9, discard): a call finds Serve unreachable.
        return self.serve_url

    def dashboard(self, project: str) -> tuple[str, dict[str, str]]:
        return self._dashboard_url(), {}

    def _dashboard_url(self) -> str:
        with self._lock:
            if self._dashboard is None:
                self._dashboard = ThreadingHTTPServer(("127.0.0.1", 0), _DashboardPage)
                threading.Thread(target=self._dashboard.serve_forever, daemon=True).start()
            return f"http://127.0.0.1:{self._dashboard.server_address[1]}"

    def release(self, project: str) -> None:
        self.released.append(project)

    def release_idle(self) -> list[str]:
        return []


def _ended(job: FakeJob, code: int) -> None:
    job.end_time = time.time()
    warm = job.spec.runner is Runner.WARM
    if job.stopping:
        job.status, job.message = JobStatus.STOPPED, WARM_STOPPED if warm else RAY_STOPPED
    elif code == 0:
        job.status, job.message = JobStatus.SUCCEEDED, "" if warm else "Job finished successfully."
    else:
        job.status = JobStatus.FAILED
        tail = job.log.read_text(errors="replace")[-20000:]
        if warm:
            job.message = WARM_FAILED.format(code=code)
        elif tail:
            job.message = RAY_FAILED.format(code=code, tail=tail)
        else:
            job.message = RAY_FAILED_SILENT.format(code=code)


def _signal(process: subprocess.Popen[bytes], number: int) -> None:
    """Signal the job's whole process group, as Ray signals a job and its children."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, number)


def _kill_late(process: subprocess.Popen[bytes]) -> None:
    try:
        process.wait(STOP_WAIT_SECONDS)
    except subprocess.TimeoutExpired:
        _signal(process, signal.SIGKILL)


class _DashboardPage(BaseHTTPRequestHandler):
    """Answers every read with a page that says what it is."""

    def do_GET(self) -> None:
        body = b"<html><title>Fake Ray dashboard</title></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_HEAD(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return None
