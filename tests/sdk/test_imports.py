"""The SDK is what users install on a laptop to script Fabric: it returns the API's response
models, but importing it must not start loading the server behind them."""

from __future__ import annotations

from tests.imports import loaded_after

SERVER_SIDE = {
    "fastapi",
    "starlette",
    "sqlalchemy",
    "alembic",
    "ray",
    "uvicorn",
    "fabric.api.app",
    "fabric.api.routers",
    "fabric.db",
    "fabric.backends",
    "fabric.config",
}


def test_importing_the_sdk_loads_no_server_code() -> None:
    assert loaded_after("import fabric.sdk", SERVER_SIDE) == []
