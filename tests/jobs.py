"""Job helpers shared by the API, SDK and CLI tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.server import Server

TERMINAL = {"SUCCEEDED", "FAILED", "STOPPED"}
# Waits until a file named `go` appears in the project's folder: the test decides when.
WAIT_FOR_GO = (
    "python -c \"import os, pathlib, time; p = pathlib.Path(os.environ['FABRIC_PROJECT_DIR'])"
    " / 'go'; print('waiting', flush=True)\nwhile not p.exists(): time.sleep(0.05)\""
)


def wait_for(
    read: Callable[[], dict[str, Any]],
    statuses: set[str],
    timeout: float = 90,
    stop: Callable[[], object] | None = None,
) -> dict[str, Any]:
    """Poll `read()` (a job as JSON) until its status is one of `statuses`.

    A job given up on is stopped (`stop`) before the test fails: left running on the
    session's shared Ray head, it held CPUs that every later test waited for, and one stall
    failed a dozen tests after it."""
    deadline = time.monotonic() + timeout
    job = read()
    while job["status"] not in statuses:
        if time.monotonic() >= deadline:
            if stop is not None:
                stop()
            raise AssertionError(f"job {job['id']} stayed {job['status']}: {job['message']}")
        time.sleep(0.2)
        job = read()
    return job


def signal_go(server: Server, project: str) -> None:
    """Let the project's WAIT_FOR_GO jobs finish."""
    folder = Path(server.settings.storage_root) / "projects" / project
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "go").touch()


def wait_until(
    read: Callable[[], dict[str, Any]], done: Callable[[dict[str, Any]], bool], timeout: float = 60
) -> dict[str, Any]:
    """Poll `read()` until `done` says its answer is what the test waits for."""
    deadline = time.monotonic() + timeout
    answer = read()
    while not done(answer):
        assert time.monotonic() < deadline, answer
        time.sleep(0.2)
        answer = read()
    return answer
