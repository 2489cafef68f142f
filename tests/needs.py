"""What some tests need from the machine (a PostgreSQL server, a browser): CI must have it, so
there its absence fails the run; a laptop without it skips those tests."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def missing(what: str, hint: str) -> NoReturn:
    if os.environ.get("CI"):
        pytest.fail(f"{what} is missing: CI must have it ({hint})")
    pytest.skip(f"{what} is missing ({hint})")
