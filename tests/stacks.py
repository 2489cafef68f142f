"""What a test server or service world runs on: a database and a compute backend.

By default a test runs twice: on SQLite with the session's real Ray head, and on PostgreSQL
with the fake backend (tests/fakes/backend.py). The first proves the feature on Ray, the
second proves it on the other database without paying Ray's start-up again; the contract
suite (tests/backends/test_contract.py) holds the fake to what the real backend does. A
module or a test picks other stacks with one of the `stacks` marks below (tests/conftest.py
reads them). Tests on a stack with Ray are marked `ray`: `make test-fast` leaves them out.
"""

from __future__ import annotations

import pytest

SQLITE_RAY, POSTGRESQL_RAY = "sqlite-ray", "postgresql-ray"
SQLITE_FAKE, POSTGRESQL_FAKE = "sqlite-fake", "postgresql-fake"
DEFAULT = [SQLITE_RAY, POSTGRESQL_FAKE]
ON_RAY = {SQLITE_RAY, POSTGRESQL_RAY}


def database_of(stack: str) -> str:
    return stack.split("-")[0]


def on_ray(stack: str) -> bool:
    return stack in ON_RAY


# What runs on Ray only, and touches the database as any other test does: once, on SQLite.
RAY_ONCE = pytest.mark.stacks(SQLITE_RAY)
# Where Ray's behaviour and PostgreSQL's meet: Ray on both databases.
RAY_ON_BOTH = pytest.mark.stacks(SQLITE_RAY, POSTGRESQL_RAY)
# Logic that needs no Ray at all: the fake backend on both databases.
WITHOUT_RAY = pytest.mark.stacks(SQLITE_FAKE, POSTGRESQL_FAKE)
