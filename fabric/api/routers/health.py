"""Liveness and readiness probes (public)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from fabric.db import migrate

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
def readyz(request: Request) -> JSONResponse:
    """Ready when the database answers and its schema is at the code's migration head."""
    try:
        revision = migrate.current(request.app.state.engine)
    except Exception:
        return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)
    if revision != migrate.head():
        return JSONResponse(
            {"status": "unavailable", "database": f"schema at {revision}, needs {migrate.head()}"},
            status_code=503,
        )
    return JSONResponse({"status": "ready", "database": "ok", "schema": revision})
