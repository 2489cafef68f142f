"""`/metrics`: endpoint calls for Prometheus, for administrators (send a bearer token)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST

from fabric.api.deps import ActorDep
from fabric.errors import Forbidden

router = APIRouter(tags=["metrics"])


@router.get("/metrics")
def metrics(request: Request, actor: ActorDep) -> Response:
    """Calls, latency and errors of every endpoint, by version; mirrored copies."""
    if not actor.user.is_admin:
        raise Forbidden("metrics cover every project's endpoints: an administrator's token only")
    return Response(request.app.state.endpoint_metrics.export(), media_type=CONTENT_TYPE_LATEST)
