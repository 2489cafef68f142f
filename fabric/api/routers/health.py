"""Liveness and readiness probes (public)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from fabric.api.schemas.health import HealthPublic, ReadinessPublic
from fabric.backends.base import BackendUnavailable
from fabric.db import migrate

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> HealthPublic:
    return HealthPublic(status="ok")


@router.get("/readyz", response_model=ReadinessPublic, responses={503: {"model": ReadinessPublic}})
def readyz(request: Request) -> JSONResponse:
    """Ready when the database is at the code's schema and the Ray cluster answers."""
    checks: dict[str, str] = {}
    try:
        revision = migrate.current(request.app.state.engine)
        head = migrate.head()
        checks["database"] = "ok" if revision == head else f"schema at {revision}, needs {head}"
    except Exception:
        checks["database"] = "unreachable"
    try:
        checks["ray"] = "ok, Ray " + request.app.state.backend.version()
    except BackendUnavailable as exc:
        checks["ray"] = str(exc)
    ready = checks["database"] == "ok" and checks["ray"].startswith("ok")
    return JSONResponse(
        {"status": "ready" if ready else "unavailable", **checks}, status_code=200 if ready else 503
    )
