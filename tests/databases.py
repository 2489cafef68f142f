"""Throw-away databases for tests: a SQLite file, or a fresh PostgreSQL database per use."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text

from tests.needs import missing

BACKENDS = ["sqlite", "postgresql"]


def postgres_admin_url() -> str:
    """The PostgreSQL server to test against; CI must have one, a laptop may skip it."""
    url = os.environ.get("FABRIC_TEST_POSTGRES_URL")
    if not url:
        missing("PostgreSQL", "set FABRIC_TEST_POSTGRES_URL; .ci/start-postgres prints it")
    return url


@contextmanager
def database(backend: str, folder: Path) -> Iterator[str]:
    """Yield the URL of a new, empty database of the given backend, dropped afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{folder / f'{uuid.uuid4().hex}.db'}"
        return
    admin_url = postgres_admin_url()
    name = f"fabric_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(
        admin_url.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
