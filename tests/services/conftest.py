"""Fixtures for service tests: a migrated database per test, on each database backend, and a
`World` per test on each of the default stacks (tests/stacks.py): SQLite with the session's
Ray head, PostgreSQL with the fake backend."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from fabric.backends.base import ComputeBackend
from fabric.backends.local_head import LocalRayHead
from fabric.backends.local_ray import LocalRayBackend
from fabric.clock import FrozenClock
from fabric.config import Settings
from fabric.db import migrate
from fabric.db.engine import make_engine, make_sessionmaker
from fabric.db.models import UserModel
from fabric.services.tenancy.actor import Actor
from tests import stacks
from tests.databases import BACKENDS, database
from tests.fakes.backend import FakeBackend
from tests.services.world import RecordingBackend, World


@contextmanager
def migrated(settings: Settings) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(settings)
    try:
        migrate.upgrade(engine)
        yield make_sessionmaker(engine)
    finally:
        engine.dispose()


@pytest.fixture(params=BACKENDS)
def sessions(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    """Sessions on a new, migrated database of each backend."""
    with (
        database(request.param, tmp_path) as url,
        migrated(Settings(home=tmp_path, database_url=url)) as made,
    ):
        yield made


@contextmanager
def compute(stack: str, settings: Settings) -> Iterator[ComputeBackend]:
    """The stack's compute backend: the fake, or the Ray head that `settings` name."""
    if stacks.on_ray(stack):
        ray = LocalRayBackend(LocalRayHead(settings))
        try:
            yield ray
        finally:
            ray.warm.shutdown()
            ray.close()
    else:
        fake = FakeBackend(settings.home / "fake-cluster")
        try:
            yield fake
        finally:
            fake.close()


@pytest.fixture
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    stack, clock = request.param, FrozenClock()
    with database(stacks.database_of(stack), tmp_path) as url:
        settings = Settings(home=tmp_path, database_url=url)
        if stacks.on_ray(stack):
            settings = settings.model_copy(update=request.getfixturevalue("ray_settings"))
        with compute(stack, settings) as backend, migrated(settings) as sessions:
            with sessions() as session:
                admin = UserModel(
                    username="admin", is_admin=True, disabled=False, created_at=clock.now()
                )
                session.add(admin)
                session.commit()
            actor = Actor(admin, "test", clock)
            yield World(settings, sessions, RecordingBackend(backend), clock, actor)
