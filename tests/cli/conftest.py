"""The `fabric` fixture: the CLI with a FABRIC_HOME of its own, against the test server."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.support import Fabric
from tests.server import Server


@pytest.fixture
def fabric(server: Server, tmp_path: Path) -> Fabric:
    return Fabric(server, tmp_path / "home")
