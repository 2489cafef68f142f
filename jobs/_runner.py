"""The warm task runner: one long-lived Ray driver that runs light jobs as Ray tasks.

A Ray Job costs seconds before its first line runs (a new driver process, its runtime env,
its Ray connection); a pipeline of short steps would spend most of its time starting. This
driver starts once per cluster and stays: the platform drops a task file in its inbox, it
starts a Ray task with the job's resources at once, on a worker that Ray keeps warm, and
writes the task's state for the platform to read. Built-in templates run inside the worker
(their imports stay loaded between tasks); any other command runs as a child process of it.

It speaks to the platform through files in its folder only (see fabric/backends/warm.py):
  inbox/ID.json    a task: entrypoint, environment, Ray options, log file
  state/ID.json    {"status": RUNNING|SUCCEEDED|FAILED|STOPPED, "message", times, runner}
  cancel/ID        the platform asks for the task to stop
  heartbeat        touched while the runner lives
Run by the platform as `python -m jobs._runner FOLDER IDLE_SECONDS SUBMISSION_ID`.
"""

from __future__ import annotations

import contextlib
import json
import os
import runpy
import shlex
import subprocess
import sys
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fabric import runtime
from fabric.runtime import messages

POLL_SECONDS = 0.02
HEARTBEAT_SECONDS = 1.0


@contextlib.contextmanager
def _redirected(log: Path) -> Iterator[None]:
    """Send this process's stdout and stderr, Python's and the C level's, to `log`."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with log.open("ab") as handle:
        os.dup2(handle.fileno(), 1)
        os.dup2(handle.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


@contextlib.contextmanager
def _environment(env: dict[str, str]) -> Iterator[None]:
    """The task's environment variables, argv and working directory, put back afterwards:
    the worker runs other tasks next."""
    saved_env, saved_argv, saved_cwd = dict(os.environ), list(sys.argv), os.getcwd()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
        sys.argv = saved_argv
        os.chdir(saved_cwd)


def execute(task: dict[str, Any]) -> int:
    """Run one task in this Ray worker; its exit status (0 is success)."""
    argv = shlex.split(task["entrypoint"])
    with _redirected(Path(task["log"])), _environment(task["env"]):
        if task["cwd"]:
            os.chdir(task["cwd"])
        try:
            if task["in_process"]:
                sys.argv = [argv[2], *argv[3:]]
                runpy.run_module(argv[2], run_name="__main__", alter_sys=True)
                return 0
            return subprocess.run(task["entrypoint"], shell=True, check=False).returncode
        except SystemExit as exc:
            if exc.code is None or isinstance(exc.code, int):
                return exc.code or 0
            print(exc.code, file=sys.stderr)
            return 1
        except BaseException:
            traceback.print_exc()
            return 1


class Runner:
    def __init__(self, folder: Path, idle_seconds: float, name: str) -> None:
        self.folder = folder
        self.idle_seconds = idle_seconds
        # Its Ray submission id: the platform tells by it whether the runner of a task lives.
        self.name = name
        for part in ("inbox", "state", "cancel", "logs"):
            (folder / part).mkdir(parents=True, exist_ok=True)
        self.running: dict[Any, str] = {}
        self.started: dict[str, float] = {}

    def _state(self, task_id: str, status: str, message: str = "") -> None:
        runtime.write_json(
            self.folder / "state" / f"{task_id}.json",
            {
                "status": status,
                "message": message,
                "start_time": self.started.get(task_id),
                "end_time": time.time() if status != "RUNNING" else None,
                "runner": self.name,
            },
        )

    def _take(self, remote: Any) -> None:
        for file in sorted((self.folder / "inbox").glob("*.json")):
            task_id = file.stem
            if (self.folder / "state" / file.name).exists():
                # A runner before this one took it and died before it could say so: the
                # platform fails it; running it again could run it twice.
                file.unlink()
                continue
            self.started[task_id] = time.time()
            if (self.folder / "cancel" / task_id).exists():
                self._state(task_id, "STOPPED", "stopped before it started")
                file.unlink()
                continue
            task = json.loads(file.read_text())
            self._state(task_id, "RUNNING")
            file.unlink()
            ref = remote.options(**task["ray_options"]).remote(task)
            self.running[ref] = task_id

    def _collect(self, ray: Any) -> None:
        if not self.running:
            return
        ready, _ = ray.wait(list(self.running), num_returns=len(self.running), timeout=0)
        for ref in ready:
            task_id = self.running.pop(ref)
            try:
                code = ray.get(ref)
            except ray.exceptions.TaskCancelledError:
                self._state(task_id, "STOPPED", "stopped")
                continue
            except ray.exceptions.RayError as exc:
                failed = f"the task's worker failed: {exc}"
                self._state(task_id, "FAILED", messages.truncate(failed))
                continue
            if code == 0:
                self._state(task_id, "SUCCEEDED")
            else:
                self._state(task_id, "FAILED", f"exited with code {code}")

    def _cancel(self, ray: Any) -> None:
        for file in (self.folder / "cancel").iterdir():
            refs = [ref for ref, task_id in self.running.items() if task_id == file.name]
            for ref in refs:
                ray.cancel(ref, force=True)
            # One still in the inbox keeps its request: `_take` stops it before it starts.
            if refs or (self.folder / "state" / f"{file.name}.json").exists():
                file.unlink(missing_ok=True)

    def serve(self) -> None:
        import ray

        ray.init()
        remote = ray.remote(execute)
        print(f"warm runner {self.name} ready in {self.folder}", flush=True)
        last_beat, last_work = 0.0, time.monotonic()
        while True:
            now = time.monotonic()
            if now - last_beat >= HEARTBEAT_SECONDS:
                (self.folder / "heartbeat").write_text(self.name)
                last_beat = now
            self._take(remote)
            self._cancel(ray)
            self._collect(ray)
            if self.running:
                last_work = now
            elif now - last_work > self.idle_seconds:
                print(f"warm runner idle for {self.idle_seconds:g} s; exiting", flush=True)
                return
            time.sleep(POLL_SECONDS)


if __name__ == "__main__":
    Runner(Path(sys.argv[1]), float(sys.argv[2]), sys.argv[3]).serve()
