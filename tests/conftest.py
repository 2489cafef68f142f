"""Shared fixtures: one real Ray head per session, and one server per stack (a database and a
compute backend, see tests/stacks.py) per session."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from argon2.profiles import CHEAPEST

from fabric.auth import passwords
from fabric.backends.local_head import LocalRayHead
from fabric.clock import FrozenClock
from fabric.config import Settings
from tests import llm_endpoint as llm_endpoints
from tests import stacks
from tests.databases import database
from tests.fakes.backend import FakeBackend
from tests.server import REMOTE_USER_HEADER, Server, free_port, running_server

# The fixtures that run on a stack (tests/stacks.py), and the scope of each.
ON_A_STACK = {"server": "session", "world": "function"}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test on a server or a world runs on each stack its `stacks` mark names, else on
    the default ones; a stack with Ray marks it `ray`."""
    marker = metafunc.definition.get_closest_marker("stacks")
    chosen = marker.args if marker else stacks.DEFAULT
    for name, scope in ON_A_STACK.items():
        if name in metafunc.fixturenames:
            params = [
                pytest.param(
                    stack, id=stack, marks=[pytest.mark.ray] if stacks.on_ray(stack) else []
                )
                for stack in chosen
            ]
            metafunc.parametrize(name, params, indirect=True, scope=scope)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark `ray` every test that asks for the session's Ray head itself; run the tests of
    the session's llm endpoint one after another, where the first of them stood, so that
    its engine holds the head's CPUs only while they run (`pytest_runtest_teardown`)."""
    for item in items:
        if "ray_settings" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.ray)
    users = [item for item in items if _uses_llm_endpoint(item)]
    if users:
        first = items.index(users[0])
        others = [item for item in items if not _uses_llm_endpoint(item)]
        items[:] = [*others[:first], *users, *others[first:]]


def _uses_llm_endpoint(item: pytest.Item | None) -> bool:
    return item is not None and "llm_endpoint" in getattr(item, "fixturenames", ())


def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """After the last test of the llm endpoint, take it down at once: its engine's replica
    would hold part of the head's two CPUs for the rest of the session."""
    if _uses_llm_endpoint(item) and not _uses_llm_endpoint(nextitem):
        llm_endpoints.take_down_all()


@pytest.fixture(scope="session", autouse=True)
def cheap_password_hashes() -> Iterator[None]:
    """Argon2id at its lowest cost: the tests make and log in over a thousand users, and at
    the production cost each hash holds both of CI's cores for a tenth of a second. The hash
    that a login of an unknown user is checked against gets the same cost, as it has in
    production."""
    production = passwords._hasher, passwords._DUMMY_HASH
    passwords._hasher = PasswordHasher.from_parameters(CHEAPEST)
    passwords._DUMMY_HASH = passwords._hasher.hash("fabric-timing-equaliser")
    yield
    passwords._hasher, passwords._DUMMY_HASH = production


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


@pytest.fixture(scope="session")
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    stack = request.param
    home = tmp_path_factory.mktemp(f"home-{stack}")
    fake = None if stacks.on_ray(stack) else FakeBackend(home / "fake-cluster")
    compute = request.getfixturevalue("ray_settings") if fake is None else {}
    with (
        database(stacks.database_of(stack), home) as url,
        running_server(
            home,
            url,
            stacks.database_of(stack),
            fake,
            # Loopback is the trusted proxy, so tests can speak for other client addresses
            # (X-Forwarded-For) and act as an SSO proxy (the remote-user header).
            trusted_proxies=["127.0.0.1/32"],
            remote_user_header=REMOTE_USER_HEADER,
            remote_user_autocreate=True,
            # Small enough that a test can send one byte too many.
            max_package_mib=1,
            # Serve's state is checked often, so that a failed deploy is undone quickly.
            serve_sync_seconds=0.5,
            **compute,
        ) as running,
    ):
        try:
            yield running
        finally:
            if fake is not None:
                fake.close()


@pytest.fixture(scope="session")
def llm_endpoint(
    server: Server, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[llm_endpoints.Scene]:
    """The session's one llm endpoint (tests/llm_endpoint.py), deployed on first use."""
    yield from llm_endpoints.serve(server, tmp_path_factory)


@pytest.fixture
def clock(server: Server) -> Iterator[FrozenClock]:
    """The server's clock; whatever a test advances is undone afterwards."""
    yield server.clock
    server.clock.offset = timedelta()
