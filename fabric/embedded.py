"""The embedded default on one machine: the API server and the local Ray head, in the background.

`fabric up` starts what is not running (the head first: the server is ready only with it),
`fabric down` stops both, `fabric status` says what runs.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx

from fabric.backends.base import BackendUnavailable
from fabric.backends.local_head import LocalRayHead
from fabric.backends.local_ray import LocalRayBackend
from fabric.config import Settings
from fabric.daemon import Daemon

SERVER_START_TIMEOUT = 60


@dataclass(frozen=True)
class Started:
    ray_head: bool
    server: bool


@dataclass(frozen=True)
class Status:
    server_pid: int | None
    server_url: str
    server_ready: bool
    ray_pid: int | None
    ray_version: str | None
    ray_dashboard: str
    ray_resources: dict[str, float]
    problem: str | None


class Embedded:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.head = LocalRayHead(settings)
        # The server logs to its rotated server.log; server.out gets only what escapes
        # logging (a crash before logging starts, a fatal error's traceback).
        self.server = Daemon(
            "Fabric server",
            settings.server_pid_file,
            settings.log_dir / "server.out",
            own_log=settings.server_log,
        )

    @property
    def url(self) -> str:
        return self.settings.local_url

    def _ready(self) -> httpx.Response | None:
        try:
            return httpx.get(f"{self.url}/readyz", timeout=5)
        except httpx.HTTPError:
            return None

    def _server_ready(self) -> bool:
        response = self._ready()
        return response is not None and response.status_code == 200

    def up(self) -> Started:
        """Start the Ray head and the server unless they run; say which ones started."""
        head_started = self.head.start()
        if self.server.pid() is not None and self._server_ready():
            return Started(head_started, server=False)
        self.server.stop()
        self.server.spawn(
            [str(Path(sys.executable).with_name("fabric")), "server", "--no-log-to-stderr"],
            env=dict(os.environ),
            ready=self._server_ready,
            timeout=SERVER_START_TIMEOUT,
        )
        return Started(head_started, server=True)

    def down(self) -> Started:
        """Stop the server, then the Ray head; say which ones were running."""
        return Started(server=self.server.stop(), ray_head=self.head.stop())

    def status(self) -> Status:
        backend = LocalRayBackend(self.head)
        version, resources, problem = None, {}, None
        try:
            version = backend.version()
            resources = backend.cluster("").resources
        except BackendUnavailable as exc:
            problem = str(exc)
        finally:
            backend.close()
        ready = self._ready()
        if problem is None and ready is not None and ready.status_code != 200:
            problem = f"the server is not ready: {ready.text}"
        return Status(
            server_pid=self.server.pid(),
            server_url=self.url,
            server_ready=ready is not None and ready.status_code == 200,
            ray_pid=self.head.pid(),
            ray_version=version,
            ray_dashboard=self.head.dashboard_url,
            ray_resources=resources,
            problem=problem,
        )
