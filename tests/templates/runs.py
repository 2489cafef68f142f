"""Running a template in tests: as a job on the session's Ray head, or as a local process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.jobs import wait_for
from tests.server import Server

# Small enough that several jobs run side by side on the test head's two CPUs.
TINY = {"cpu": 0.5}


def submit(
    server: Server,
    token: str,
    project: str,
    template: str,
    params: dict[str, Any],
    **request: Any,
) -> str:
    """Submit the template as a job (`request` adds fields, e.g. workers); the job's API path."""
    body = {"template": template, "params": params, "resources": TINY, **request}
    with server.client(token) as client:
        response = client.post(f"/api/v1/projects/{project}/jobs", json=body)
    assert response.status_code == 201, response.text
    return f"/api/v1/projects/{project}/jobs/{response.json()['id']}"


def finish(
    server: Server, token: str, project: str, path: str, timeout: float = 240
) -> tuple[dict[str, Any], Path]:
    """Wait for the job's end; its outputs and its run folder once it has SUCCEEDED.

    Ray Train and Tune jobs spend 30-50 s starting workers on two cores: hence the timeout.
    """
    with server.client(token) as client:
        job = wait_for(
            lambda: client.get(path).json(),
            {"SUCCEEDED", "FAILED", "STOPPED"},
            timeout,
            stop=lambda: client.post(f"{path}/stop"),
        )
        logs = client.get(f"{path}/logs").text
    assert job["status"] == "SUCCEEDED", f"{job['message']}\n{logs}"
    run_dir = (
        Path(server.settings.storage_root) / "projects" / project / "runs" / f"job-{job['id']}"
    )
    return json.loads((run_dir / "outputs.json").read_text()), run_dir


def run(
    server: Server, token: str, project: str, template: str, params: dict[str, Any], **request: Any
) -> tuple[dict[str, Any], Path]:
    """Submit the template as a job, wait for its end, return its outputs and run folder."""
    return finish(
        server, token, project, submit(server, token, project, template, params, **request)
    )


def local(
    module: str, *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m MODULE ARGS` in a bare environment (with `env`), as on a laptop outside
    Fabric."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={"PATH": str(Path(sys.executable).parent), **(env or {})},
    )
