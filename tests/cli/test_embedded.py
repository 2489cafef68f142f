"""`fabric up`, `status`, `down` on a fresh FABRIC_HOME: a real Ray head and a real server."""

from __future__ import annotations

import os
import shutil
import signal
import stat
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from fabric.cli.main import app
from tests.conftest import short_folder
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
