"""Shared fixtures: one real server per database backend for the whole session."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.databases import BACKENDS, database
from tests.server import REMOTE_USER_HEADER, Server, running_server

# Gradio, Hugging Face and friends must never phone home from tests.
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session", params=BACKENDS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
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
        ) as running,
    ):
        yield running


@pytest.fixture
def clock(server: Server) -> Iterator[object]:
    """The server's clock; whatever a test advances is undone afterwards."""
    yield server.clock
    server.clock.offset = type(server.clock.offset)()
