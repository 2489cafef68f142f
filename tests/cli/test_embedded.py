"""`fabric up`, `status`, `down` on a fresh FABRIC_HOME: a real Ray head and a real server."""

from __future__ import annotations

import os
import re
import shutil
import signal
import stat
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from fabric.cli.main import app
from fabric.config import Settings
from fabric.embedded import Embedded
from tests.conftest import short_folder
from tests.jobs import TERMINAL, WAIT_FOR_GO, wait_for
from tests.server import free_port


@pytest.mark.ray  # it starts a Ray head of its own
def test_up_status_restart_after_a_dead_head_and_down(tmp_path: Path) -> None:
    ray_folder = short_folder()
    env = {
        "FABRIC_HOME": str(tmp_path),
        "FABRIC_RAY_FOLDER": str(ray_folder),
        "FABRIC_PORT": str(free_port()),
        "FABRIC_RAY_GCS_PORT": str(free_port()),
        "FABRIC_RAY_DASHBOARD_PORT": str(free_port()),
        "FABRIC_RAY_CLIENT_PORT": str(free_port()),
        "FABRIC_RAY_DASHBOARD_AGENT_PORT": str(free_port()),
        "FABRIC_RAY_NUM_CPUS": "1",
    }
    runner = CliRunner(env=env)
    url = f"http://127.0.0.1:{env['FABRIC_PORT']}"
    try:
        first = runner.invoke(app, ["up"])
        assert first.exit_code == 0, first.output
        assert "started the Ray head and the server" in first.output
        assert "initial_admin_password" in first.output
        assert httpx.get(f"{url}/readyz").json()["ray"] == "ok, Ray 2.60.0"

        again = runner.invoke(app, ["up"])
        assert again.exit_code == 0
        assert "already up" in again.output

        status = runner.invoke(app, ["status", "--json"])
        assert status.exit_code == 0, status.output
        assert '"server_ready": true' in status.output
        assert '"ray_version": "2.60.0"' in status.output
        shown = runner.invoke(app, ["status"])
        assert shown.exit_code == 0, shown.output
        resources = next(line for line in shown.stdout.splitlines() if line.startswith("resources"))
        # A count of CPUs (FABRIC_RAY_NUM_CPUS above), memory rounded in GiB.
        assert re.fullmatch(r"resources +cpu 1, (gpu \d+, )?memory \d+\.\d GiB", resources.strip())

        token = ray_folder / "auth_token"
        assert stat.S_IMODE(token.stat().st_mode) == 0o600
        assert token.read_text().strip() not in first.output + status.output

        head_pid = int((ray_folder / "head.pid").read_text())
        os.killpg(head_pid, signal.SIGKILL)
        dead = httpx.get(f"{url}/readyz")
        assert dead.status_code == 503
        assert "fabric up" in dead.json()["ray"]
        assert runner.invoke(app, ["status"]).exit_code == 1

        revived = runner.invoke(app, ["up"])
        assert revived.exit_code == 0, revived.output
        assert "started the Ray head:" in revived.output
        assert httpx.get(f"{url}/readyz").status_code == 200
    finally:
        down = runner.invoke(app, ["down"])
        shutil.rmtree(ray_folder, ignore_errors=True)
    assert "stopped the server" in down.output
    assert "stopped the Ray head" in down.output
    assert not (tmp_path / "server.pid").exists()


PASSWORD = "embedded-root-secret-4q9z"
# A Ray Job that notes in its run folder that it was asked to stop (SIGTERM), then stops.
NOTES_ITS_STOP = (
    'python -c "import os, pathlib, signal\n'
    "def stop(*_):\n"
    "    pathlib.Path(os.environ['FABRIC_RUN_DIR'], 'terminated').touch()\n"
    "    raise SystemExit(0)\n"
    "signal.signal(signal.SIGTERM, stop)\n"
    "print('waiting', flush=True)\n"
    'signal.pause()"'
)
# A pipeline whose one light task runs on the warm runner until it is stopped.
LEFT_RUNNING = {
    "name": "left-running",
    "tasks": {
        "light": {
            "template": "shell",
            "params": {"command": "sleep 600"},
            "resources": {"cpu": 0.1},
        }
    },
}


def _login(url: str) -> httpx.Client:
    token = httpx.post(
        f"{url}/api/v1/auth/login", json={"username": "admin", "password": PASSWORD}
    ).json()["access_token"]
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60)


def _tree(roots: list[int]) -> set[int]:
    """`roots` and every process they started, and theirs: Ray starts a job's entrypoint in a
    session of its own, outside the head's process group."""
    parents = {}
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        parents[int(stat_file.parent.name)] = int(fields[1])
    found = set(roots)
    while more := {pid for pid, parent in parents.items() if parent in found} - found:
        found |= more
    return found


def _running(pids: set[int]) -> set[int]:
    """Those of `pids` still running (a zombie runs nothing)."""
    running = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z":
            running.add(pid)
    return running


@pytest.mark.ray  # it starts a Ray head of its own
def test_down_stops_the_work_and_leaves_no_ray_process_or_server(tmp_path: Path) -> None:
    ray_folder = short_folder()
    port = free_port()
    env = {
        "FABRIC_HOME": str(tmp_path),
        "FABRIC_RAY_FOLDER": str(ray_folder),
        "FABRIC_ADMIN_PASSWORD": PASSWORD,
        "FABRIC_PORT": str(port),
        "FABRIC_RAY_GCS_PORT": str(free_port()),
        "FABRIC_RAY_DASHBOARD_PORT": str(free_port()),
        "FABRIC_RAY_CLIENT_PORT": str(free_port()),
        "FABRIC_RAY_DASHBOARD_AGENT_PORT": str(free_port()),
        "FABRIC_RAY_SERVE_PORT": str(free_port()),
        "FABRIC_RAY_NUM_CPUS": "1",
    }
    runner = CliRunner(env=env)
    try:
        up = runner.invoke(app, ["up"])
        assert up.exit_code == 0, up.output
        with _login(f"http://127.0.0.1:{port}") as fabric:
            fabric.post("/api/v1/projects", json={"name": "work"}).raise_for_status()
            base = "/api/v1/projects/work"
            submitted = fabric.post(
                f"{base}/jobs", json={"entrypoint": NOTES_ITS_STOP, "resources": {"cpu": 0.1}}
            )
            submitted.raise_for_status()
            job = submitted.json()["id"]
            pipeline = f"{base}/pipelines/{LEFT_RUNNING['name']}"
            fabric.put(pipeline, json=LEFT_RUNNING).raise_for_status()
            fabric.post(f"{pipeline}/runs", json={}).raise_for_status()

            def jobs() -> dict[str, object]:
                # Both jobs as one, RUNNING once both run: the Ray Job and the warm task.
                found = fabric.get(f"{base}/jobs").json()
                warm = [j for j in found if (j["submission_id"] or "").startswith("warm-")]
                running = len(found) == 2 and len(warm) == 1
                statuses = {j["status"] for j in found}
                status = "RUNNING" if running and statuses == {"RUNNING"} else str(statuses)
                return {"id": "both", "status": status, "message": found}

            wait_for(jobs, {"RUNNING"})
        head, server = (
            int(f.read_text()) for f in (ray_folder / "head.pid", tmp_path / "server.pid")
        )
        started = _tree([head, server])
    finally:
        down = runner.invoke(app, ["down"])
        shutil.rmtree(ray_folder, ignore_errors=True)
    assert down.exit_code == 0, down.output
    assert "stopped the server" in down.output and "stopped the Ray head" in down.output
    assert _running(started) == set()
    # The Ray Job was asked to stop, as Ray stops a job, before the head went down.
    run_dir = tmp_path / "storage" / "projects" / "work" / "runs" / f"job-{job}"
    assert (run_dir / "terminated").exists()


@pytest.mark.ray  # it starts a server against the session's Ray head
def test_up_logs_once_without_a_line_per_request(
    ray_settings: dict[str, object], tmp_path: Path
) -> None:
    port = free_port()
    env = {
        "FABRIC_HOME": str(tmp_path),
        "FABRIC_ADMIN_PASSWORD": PASSWORD,
        "FABRIC_PORT": str(port),
        **{f"FABRIC_{name.upper()}": str(value) for name, value in ray_settings.items()},
    }
    embedded = Embedded(Settings(home=tmp_path, port=port, **ray_settings))
    log, out = tmp_path / "logs" / "server.log", tmp_path / "logs" / "server.out"
    try:
        up = CliRunner(env=env).invoke(app, ["up"])
        assert up.exit_code == 0, up.output
        assert "started the server" in up.output  # the session's head was up already
        with _login(f"http://127.0.0.1:{port}") as fabric:
            fabric.post("/api/v1/projects", json={"name": "logs"}).raise_for_status()
            route = "/api/v1/projects/logs/jobs"
            body = {"entrypoint": WAIT_FOR_GO, "resources": {"cpu": 0.1}}
            job = fabric.post(route, json=body).json()["id"]
            # Fabric follows the job on Ray (a request each pass) until it has ended.
            wait_for(lambda: fabric.get(f"{route}/{job}").json(), {"RUNNING"})
            (tmp_path / "storage" / "projects" / "logs" / "go").touch()
            assert wait_for(lambda: fabric.get(f"{route}/{job}").json(), TERMINAL)["status"] == (
                "SUCCEEDED"
            )
    finally:
        embedded.server.stop()
    logged = log.read_text().splitlines()
    assert any("ready on database" in line for line in logged)
    assert not [line for line in logged if "HTTP Request:" in line]
    assert not [line for line in logged if "GET /readyz" in line], "no access log by default"
    # Written once: what the server printed holds none of the lines it logged.
    assert set(out.read_text().splitlines()) & set(logged) == set()

    # The access log, when asked for.
    try:
        again = CliRunner(env={**env, "FABRIC_ACCESS_LOG": "true"}).invoke(app, ["up"])
        assert again.exit_code == 0, again.output
    finally:
        embedded.server.stop()
    assert '"GET /readyz HTTP/1.1" 200' in log.read_text()
