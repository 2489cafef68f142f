"""Fixtures for service tests: a migrated database per test, on each database backend, and a
`World` on it that uses the session's Ray head."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from fabric.backends.local_head import LocalRayHead
from fabric.backends.local_ray import LocalRayBackend
from fabric.clock import FrozenClock
from fabric.config import Settings
from fabric.db import migrate
from fabric.db.engine import make_engine, make_sessionmaker
from fabric.db.models import UserModel
from fabric.services.tenancy.actor import Actor
from tests.databases import BACKENDS, database
from tests.services.world import RecordingBackend, World


@pytest.fixture(params=BACKENDS)
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """Settings naming a new, empty database of each backend."""
    with database(request.param, tmp_path) as url:
        yield Settings(home=tmp_path, database_url=url)


@pytest.fixture
def sessions(settings: Settings) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(settings)
    try:
        migrate.upgrade(engine)
        yield make_sessionmaker(engine)
    finally:
        engine.dispose()


@pytest.fixture
def world(
    settings: Settings, sessions: sessionmaker[Session], ray_settings: dict[str, object]
) -> Iterator[World]:
    settings = settings.model_copy(update=ray_settings)
    clock = FrozenClock()
    ray = LocalRayBackend(LocalRayHead(settings))
    with sessions() as session:
        admin = UserModel(username="admin", is_admin=True, disabled=False, created_at=clock.now())
        session.add(admin)
        session.commit()
    try:
        yield World(settings, sessions, RecordingBackend(ray), clock, Actor(admin, "test", clock))
    finally:
        ray.warm.shutdown()
        ray.close()
