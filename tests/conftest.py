"""Shared fixtures: one real Ray head, and one real server per database backend, per session."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from fabric.backends.local_head import LocalRayHead
from fabric.clock import FrozenClock
from fabric.config import Settings
from tests.databases import BACKENDS, database
from tests.server import REMOTE_USER_HEADER, Server, free_port, running_server


@pytest.fixture(scope="session")
def ray_settings() -> Iterator[dict[str, object]]:
    """One real Ray head for the whole test session, on free ports; the settings that name it."""
    folder = short_folder()
    overrides: dict[str, object] = {
        "ray_folder": folder,
        "ray_gcs_port": free_port(),
        "ray_dashboard_port": free_port(),
        "ray_client_port": free_port(),
        "ray_dashboard_agent_port": free_port(),
        "ray_serve_port": free_port(),
        "ray_num_cpus": 2,
    }
    head = LocalRayHead(Settings(home=folder, **overrides))
    head.start()
    yield overrides
    head.stop()
    shutil.rmtree(folder, ignore_errors=True)


def short_folder() -> Path:
    """A folder with a short path: Ray's socket paths must fit in 107 characters."""
    return Path(tempfile.mkdtemp(prefix="fabric-ray-", dir="/tmp"))


@pytest.fixture(scope="session", params=BACKENDS)
def server(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    ray_settings: dict[str, object],
) -> Iterator[Server]:
    backend = request.param
    home = tmp_path_factory.mktemp(f"home-{backend}")
    with (
        database(backend, home) as url,
        running_server(
            home,
            url,
            backend,
            # Loopback is the trusted proxy, so tests can speak for other client addresses
            # (X-Forwarded-For) and act as an SSO proxy (the remote-user header).
            trusted_proxies=["127.0.0.1/32"],
            remote_user_header=REMOTE_USER_HEADER,
            remote_user_autocreate=True,
            # Small enough that a test can send one byte too many.
            max_package_mib=1,
            # Serve's state is checked often, so that a failed deploy is undone quickly.
            serve_sync_seconds=0.5,
            **ray_settings,
        ) as running,
    ):
        yield running


@pytest.fixture
def clock(server: Server) -> Iterator[FrozenClock]:
    """The server's clock; whatever a test advances is undone afterwards."""
    yield server.clock
    server.clock.offset = timedelta()
