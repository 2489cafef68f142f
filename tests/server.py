"""A real Fabric server on a free loopback port, run in a thread of the test process."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvicorn

from fabric.api.app import KEEP_ALIVE_SECONDS, create_app
from fabric.backends.local_head import LocalRayHead
from fabric.backends.local_ray import LocalRayBackend
from fabric.clock import FrozenClock
from fabric.config import Settings
from tests.fakes.backend import FakeBackend

ADMIN_PASSWORD = "test-root-secret-7f3k"
REMOTE_USER_HEADER = "X-Remote-User"
# One TLS context for every test client: httpx builds a new one per client otherwise, which
# costs 25 ms, and the tests make thousands of clients (their server speaks plain HTTP).
TLS = ssl.create_default_context()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    url: str
    settings: Settings
    clock: FrozenClock
    backend: str
    admin_token: str
    # The fake compute backend the server runs on; None: the session's real Ray head.
    fake: FakeBackend | None = None

    def client(self, token: str | None = None, **headers: str) -> httpx.Client:
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return httpx.Client(base_url=self.url, headers=headers, timeout=60, verify=TLS)

    def admin(self) -> httpx.Client:
        return self.client(self.admin_token)


@contextmanager
def serving(app: object, port: int | None = None) -> Iterator[str]:
    """Serve an ASGI app with uvicorn on loopback (a free port by default); yield its URL."""
    port = port or free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    started = threading.Event()
    while thread.is_alive() and not started.wait(0.02):
        if server.started:
            started.set()
    if not server.started:
        raise RuntimeError("the test server did not start; see the log above")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@contextmanager
def running_server(
    home: Path,
    database_url: str,
    backend: str,
    fake: FakeBackend | None = None,
    **overrides: object,
) -> Iterator[Server]:
    """A server on the database; on the fake compute backend if given, else on the Ray head
    that `overrides` name, whose warm runner it stops as it ends: no server's light jobs
    outlive it on the session's shared head, holding its CPUs."""
    settings = Settings(
        home=home,
        database_url=database_url,
        port=free_port(),
        **{"admin_password": ADMIN_PASSWORD, **overrides},
    )
    clock = FrozenClock()
    ray = None if fake else LocalRayBackend(LocalRayHead(settings))
    try:
        with serving(create_app(settings, clock, fake or ray), settings.port) as url:
            password = (
                settings.admin_password.get_secret_value()
                if settings.admin_password
                else settings.initial_password_file.read_text().strip()
            )
            response = httpx.post(
                f"{url}/api/v1/auth/login", json={"username": "admin", "password": password}
            )
            response.raise_for_status()
            yield Server(url, settings, clock, backend, response.json()["access_token"], fake)
    finally:
        if ray is not None:
            ray.warm.shutdown()
            ray.close()
