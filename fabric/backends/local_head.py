"""The embedded default's Ray head: started, watched and stopped by Fabric on this machine.

Ray's dashboard and Jobs API accept anyone who reaches them unless token auth is on
(CVE-2023-48022), so the head always runs with `RAY_AUTH_MODE=token` and a token that Fabric
generates and keeps readable by its owner only. The head runs as `ray start --head --block`
in a session of its own: stopping it ends exactly its processes, never another Ray on the
machine (`ray stop` would end them all). Signalling the leader alone lets it stop its
processes in order; signalling the whole group at once leaves GCS and raylet hanging.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
import time
from pathlib import Path

import httpx

from fabric.backends.base import BackendError, BackendRefused, BackendUnavailable
from fabric.backends.ray_jobs import RayJobsApi
from fabric.config import Settings
from fabric.daemon import Daemon, DaemonFailed

# Ray puts Unix sockets at TEMP/session_<date>_<pid>/sockets/plasma_store: about 63 characters
# beyond its temp dir, within the 107 a socket path may have.
MAX_SESSION_FOLDER = 40
# `stop`: the head's work gets this long to end through Ray's APIs (Ray stops a job with
# SIGTERM and kills it 3 s later), then the head this long to exit after its SIGTERM.
QUIET_SECONDS = 6.0
STOP_SECONDS = 10.0
# On SIGTERM Ray drains a node (waits for its work to move elsewhere) for this long, 30 s by
# default. A lone head has nowhere to move work to, and `stop` has ended it first.
DRAIN_VARIABLE = "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S"


class LocalRayHead:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.folder = settings.ray_dir
        self.token_file = self.folder / "auth_token"
        self.daemon = Daemon(
            "Ray head", self.folder / "head.pid", settings.log_dir / "ray-head.log"
        )

    @property
    def dashboard_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.ray_dashboard_port}"

    def token(self) -> str:
        """The head's token, created on first use with mode 0600."""
        if not self.token_file.exists():
            self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(self.token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32))
        return self.token_file.read_text().strip()

    def auth_headers(self) -> dict[str, str]:
        # Ray also reads X-Ray-Authorization, which leaves Authorization free for Fabric's own
        # token when a request is passed through.
        return {"X-Ray-Authorization": f"Bearer {self.token()}"}

    def environment(self) -> dict[str, str]:
        """What any process that talks to this head (the head itself, the ray CLI) needs."""
        return {
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN_PATH": str(self.token_file),
            "RAY_USAGE_STATS_ENABLED": "0",
        }

    def pid(self) -> int | None:
        return self.daemon.pid()

    def _get(self, path: str) -> httpx.Response:
        return httpx.get(f"{self.dashboard_url}{path}", headers=self.auth_headers(), timeout=5)

    def alive(self) -> bool:
        try:
            return self._get("/api/version").status_code == 200
        except httpx.HTTPError:
            return False

    def version(self) -> str:
        try:
            response = self._get("/api/version")
            response.raise_for_status()
        except httpx.HTTPError as exc:
            raise BackendUnavailable(
                f"the local Ray head does not answer at {self.dashboard_url}; "
                "start it with `fabric up`"
            ) from exc
        return response.json()["ray_version"]

    def _node_registered(self) -> bool:
        """Ready for work: the dashboard answers and lists the head node as alive."""
        try:
            response = self._get("/api/v0/nodes")
            nodes = response.json()["data"]["result"]["result"] if response.is_success else []
        except (httpx.HTTPError, ValueError, KeyError):
            return False
        return any(node.get("state") == "ALIVE" for node in nodes)

    @property
    def session_folder(self) -> Path:
        return self.folder / "session"

    def _command(self) -> list[str]:
        s = self.settings
        command = [
            str(Path(sys.executable).with_name("ray")),
            "start",
            "--head",
            "--block",
            "--disable-usage-stats",
            "--node-ip-address=127.0.0.1",
            "--dashboard-host=127.0.0.1",
            f"--port={s.ray_gcs_port}",
            f"--dashboard-port={s.ray_dashboard_port}",
            f"--ray-client-server-port={s.ray_client_port}",
            f"--dashboard-agent-listen-port={s.ray_dashboard_agent_port}",
            f"--temp-dir={self.session_folder}",
        ]
        if s.ray_num_cpus is not None:
            command.append(f"--num-cpus={s.ray_num_cpus:g}")
        if s.ray_object_store_gib is not None:
            command.append(f"--object-store-memory={int(s.ray_object_store_gib * 2**30)}")
        return command

    def start(self) -> bool:
        """Start the head unless it runs; False when it already did. Waits until it serves."""
        if self.pid() is not None and self.alive():
            return False
        if len(str(self.session_folder)) > MAX_SESSION_FOLDER:
            raise BackendUnavailable(
                f"Ray's session folder {self.session_folder} is too long for its sockets: set "
                f"FABRIC_RAY_FOLDER to a folder of yours with a path of at most "
                f"{MAX_SESSION_FOLDER - len('/session')} characters"
            )
        self.daemon.stop()
        self.token()
        try:
            self.daemon.spawn(
                self._command(),
                env={
                    DRAIN_VARIABLE: "0",
                    **os.environ,
                    **self.environment(),
                    "PATH": _path_with_this_python(),
                },
                ready=self._node_registered,
                timeout=self.settings.ray_start_timeout_seconds,
            )
        except DaemonFailed as exc:
            raise BackendUnavailable(str(exc)) from exc
        return True

    def stop(self) -> bool:
        """Stop the head and every process it started; False when nothing ran.

        Its work ends first, through Ray's own APIs (`_quiet`): a head with a job, the warm
        runner or a Serve application left ignores SIGTERM while it drains, and would only end
        at the daemon's SIGKILL. A quiet head stops in seconds, and the wait for it is bounded.
        """
        if self.pid() is not None:
            self._quiet(QUIET_SECONDS)
        return self.daemon.stop(timeout=STOP_SECONDS)

    def _quiet(self, timeout: float) -> None:
        """Stop every job still running (the warm runner is one: its tasks end with it) and
        delete Serve's applications, then wait up to `timeout` for the jobs to end."""
        deadline = time.monotonic() + timeout
        api = RayJobsApi(self.dashboard_url, self.auth_headers(), timeout=timeout)
        try:
            for submission_id in api.unfinished():
                with contextlib.suppress(BackendRefused):  # it ended meanwhile
                    api.stop(submission_id)
            # Ray stops the jobs meanwhile: SIGTERM, and SIGKILL 3 s later. Serve that does
            # not end in time is torn down with the head.
            with contextlib.suppress(BackendError):
                if api.serve_running():
                    api.delete_serve()
            while api.unfinished() and time.monotonic() < deadline:
                time.sleep(0.1)
        except BackendError:
            pass  # a head that does not answer is stopped by signal alone
        finally:
            api.close()


def _path_with_this_python() -> str:
    """PATH with this Python's folder first: `python` in a job is the Python Ray runs on."""
    return os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
