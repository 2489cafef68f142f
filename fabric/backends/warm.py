"""The platform's side of the warm task runner (jobs/_runner.py): light jobs handed to a
long-lived Ray driver through files, instead of a Ray Job each.

The runner is a Ray Job of its own, started on first use and again whenever it has ended (it
exits after a while without work). Its tasks' submission ids start with PREFIX, which is how
the backend tells them from Ray Jobs; their state, logs and stop requests are files in its
folder. Only the server writes the inbox, and only the runner the states, so neither needs a
lock.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fabric import runtime
from fabric.backends.base import BackendRefused, JobSpec, JobState
from fabric.backends.ray_jobs import RayJobsApi, follow
from fabric.states import JobStatus

PREFIX = "warm-"
# How long a runner's liveness, once asked of Ray, is trusted before asking again.
CHECK_SECONDS = 2.0
# A runner touches its heartbeat each second; one silent this long is taken for dead.
STALE_SECONDS = 10.0


def is_warm(submission_id: str) -> bool:
    return submission_id.startswith(PREFIX)


def _built_in(spec: JobSpec) -> bool:
    """Whether the job runs a built-in template with no code or packages of its own: only
    then does it run inside the warm worker. Anything else runs as a child process of it,
    so that no user's code leaves state behind in a worker that later runs others' tasks."""
    argv = shlex.split(spec.entrypoint)
    own_code = {k for k in spec.runtime_env if k != "env_vars"}
    return (
        len(argv) >= 3
        and argv[:2] == ["python", "-m"]
        and argv[2].startswith("jobs.")
        and not own_code
    )


class WarmRunner:
    def __init__(self, api: RayJobsApi, folder: Path, idle_seconds: float) -> None:
        self.api = api
        self.folder = folder
        self.idle_seconds = idle_seconds
        self._checked_at = 0.0
        self._alive: str | None = None

    def _path(self, part: str, submission_id: str, suffix: str = ".json") -> Path:
        return self.folder / part / f"{submission_id}{suffix}"

    def _current(self) -> str | None:
        """The runner's Ray submission id, if one was started."""
        try:
            return json.loads((self.folder / "runner.json").read_text())["submission_id"]
        except (FileNotFoundError, ValueError, KeyError):
            return None

    def alive(self) -> str | None:
        """The running runner's submission id, or None when none runs (asked of Ray)."""
        if self._alive is not None and time.monotonic() - self._checked_at < CHECK_SECONDS:
            return self._alive
        current = self._current()
        self._alive = None
        if current is not None:
            try:
                if not self.api.state(current).status.terminal:
                    self._alive = current
            except BackendRefused:
                pass
        self._checked_at = time.monotonic()
        return self._alive

    def ensure(self) -> str:
        """Start the runner unless it runs; its submission id."""
        running = self.alive()
        if running is not None:
            return running
        for part in ("inbox", "state", "cancel", "logs"):
            (self.folder / part).mkdir(parents=True, exist_ok=True)
        submission_id = f"fabric-warm-runner-{time.time_ns()}"
        entrypoint = shlex.join(
            [
                "python",
                "-m",
                "jobs._runner",
                str(self.folder),
                f"{self.idle_seconds:g}",
                submission_id,
            ]
        )
        # The driver only hands tasks out: it holds no CPU, its tasks hold their jobs' own.
        self.api.submit(
            JobSpec(
                submission_id=submission_id,
                entrypoint=entrypoint,
                metadata={"fabric_role": "warm-runner"},
            )
        )
        runtime.write_json(self.folder / "runner.json", {"submission_id": submission_id})
        self._alive, self._checked_at = submission_id, time.monotonic()
        return submission_id

    def submit(self, spec: JobSpec) -> str:
        """Hand the job to the runner (starting it if need be); the task's submission id."""
        self.ensure()
        submission_id = f"{PREFIX}{spec.submission_id}"
        options: dict[str, Any] = {"num_cpus": spec.cpu, "num_gpus": spec.gpu}
        if spec.memory_gib:
            options["memory"] = int(spec.memory_gib * 2**30)
        if spec.custom_resources:
            options["resources"] = spec.custom_resources
        runtime_env = {k: v for k, v in spec.runtime_env.items() if k != "env_vars"}
        if runtime_env:
            options["runtime_env"] = runtime_env
        env = spec.runtime_env.get("env_vars", {})
        task = {
            "entrypoint": spec.entrypoint,
            "cwd": spec.cwd,
            # Set inside the worker, not as Ray's runtime env: each distinct env would need a
            # fresh worker process, and the point is to reuse warm ones.
            "env": env,
            "in_process": _built_in(spec),
            "ray_options": options,
            "log": str(self._path("logs", submission_id, ".log")),
        }
        runtime.write_json(self._path("inbox", submission_id), task)
        return submission_id

    def _read_state(self, submission_id: str) -> dict[str, Any] | None:
        try:
            return json.loads(self._path("state", submission_id).read_text())
        except FileNotFoundError:
            return None

    def state(self, submission_id: str) -> JobState:
        found = self._read_state(submission_id)
        if found is None:
            if self._path("inbox", submission_id).exists():
                self.ensure()  # a runner that ended idle meanwhile is started again
                return JobState(JobStatus.PENDING, "waiting for the warm runner")
            # The runner writes the state before it takes the task from the inbox: one that
            # was taken just now has its state by now.
            found = self._read_state(submission_id)
            if found is None:
                return JobState(JobStatus.FAILED, "the warm runner lost the task")
        status = JobStatus(found["status"])
        runner = found["runner"]
        if status is JobStatus.RUNNING and runner != self.alive() and not self._beating(runner):
            return JobState(
                JobStatus.FAILED,
                "the warm runner that ran it ended before the task did",
                start_time=found["start_time"],
            )
        return JobState(status, found["message"], found["start_time"], found["end_time"])

    def _beating(self, runner: str) -> bool:
        """Whether `runner` touched the heartbeat lately: then it lives, even when Ray's API
        fails to say so for a moment."""
        heartbeat = self.folder / "heartbeat"
        try:
            recent = time.time() - heartbeat.stat().st_mtime < STALE_SECONDS
            return recent and heartbeat.read_text() == runner
        except FileNotFoundError:
            return False

    def stop(self, submission_id: str) -> bool:
        self._path("cancel", submission_id, "").write_text("")
        return True

    def logs(self, submission_id: str) -> str:
        try:
            return self._path("logs", submission_id, ".log").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def follow_logs(self, submission_id: str) -> Iterator[str]:
        return follow(lambda: self.state(submission_id), lambda: self.logs(submission_id))

    def shutdown(self) -> None:
        """Stop the runner (its running tasks end with it)."""
        current = self._current()
        if current is not None:
            with contextlib.suppress(BackendRefused):
                self.api.stop(current)
        self._alive = None
