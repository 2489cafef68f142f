"""Migrations: from empty to head, back down and up again, and models matching the schema."""

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from fabric.config import Settings
from fabric.db import migrate
from fabric.db.engine import make_engine
from fabric.db.models import Base
from tests.databases import BACKENDS, database
from tests.server import running_server


@pytest.mark.parametrize("backend", BACKENDS)
def test_upgrade_downgrade_round_trip(backend: str, tmp_path: Path) -> None:
    with database(backend, tmp_path) as url:
        engine = make_engine(Settings(home=tmp_path, database_url=url))
        try:
            migrate.upgrade(engine)
            assert migrate.current(engine) == migrate.head()
            tables = set(inspect(engine).get_table_names())
            assert set(Base.metadata.tables) <= tables

            with engine.connect() as conn:
                diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
            assert diff == [], "models and migrations disagree; write a migration"

            migrate.downgrade(engine, "base")
            assert migrate.current(engine) is None
            assert set(inspect(engine).get_table_names()) <= {"alembic_version"}

            migrate.upgrade(engine)
            assert migrate.current(engine) == migrate.head()
        finally:
            engine.dispose()


def test_server_start_migrates_an_empty_database(
    tmp_path: Path, ray_settings: dict[str, object]
) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    with (
        running_server(tmp_path, url, "sqlite", **ray_settings) as server,
        server.client() as client,
    ):
        ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["database"] == "ok"
    engine = create_engine(url)
    assert migrate.current(engine) == migrate.head()
    engine.dispose()
