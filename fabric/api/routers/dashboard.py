"""The Ray dashboard behind Fabric's login: `/ray/{project}/dashboard/`, read-only.

Only GET and HEAD pass: the dashboard is for looking, and anything that changes the cluster
(submitting a job, deploying) goes through Fabric's own routes, where quotas and the audit
trail apply.
"""

from __future__ import annotations

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from sqlalchemy.orm import Session
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from fabric.api.deps import (
    ActorDep,
    BackendDep,
    ClientDep,
    ClockDep,
    SessionDep,
    SettingsDep,
    authenticate,
)
from fabric.api.schemas.jobs import DashboardLink
from fabric.backends.base import BackendUnavailable
from fabric.clock import Clock
from fabric.config import Settings
from fabric.errors import MethodNotAllowed
from fabric.services.jobs import dashboards
from fabric.services.tenancy import projects, tokens

router = APIRouter(tags=["dashboard"])

COOKIE = "fabric_dashboard"
# Sent on to the dashboard: what a browser needs for content and caching, never credentials.
FORWARDED = (
    "accept",
    "accept-encoding",
    "accept-language",
    "if-none-match",
    "if-modified-since",
    "range",
    "user-agent",
)
# Kept out of the answer: per-connection headers, and cookies the dashboard might set.
DROPPED = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "proxy-authenticate",
    "proxy-authorization",
    "set-cookie",
}


def _prefix(project: str) -> str:
    return f"/ray/{project}/dashboard"


@router.post("/api/v1/projects/{project}/dashboard", status_code=201)
def open_dashboard(
    project: str, session: SessionDep, backend: BackendDep, actor: ActorDep
) -> DashboardLink:
    """A link that opens the project's Ray dashboard in a browser; it works once, for a minute."""
    issued = dashboards.open_ticket(session, backend, actor, project)
    lifetime = tokens.TICKET_LIFETIME.total_seconds()
    return DashboardLink(
        url=f"{_prefix(project)}/?ticket={issued.secret}", expires_in_seconds=int(lifetime)
    )


@router.get("/ray/{project}/dashboard", include_in_schema=False)
async def dashboard_root(project: str) -> RedirectResponse:
    # The dashboard's pages load their files by relative paths: they need the slash.
    return RedirectResponse(f"{_prefix(project)}/", status_code=308)


def _check_viewer(
    request: Request,
    session: Session,
    settings: Settings,
    clock: Clock,
    client: str,
    project: str,
) -> None:
    """A member of the project, by the dashboard's cookie or a bearer token; else an error."""
    cookie = request.cookies.get(COOKIE)
    if cookie and "authorization" not in request.headers:
        dashboards.cookie_viewer(session, clock, client, project, cookie)
        return
    peer = request.client.host if request.client else ""
    actor = authenticate(session, settings, clock, client, peer, dict(request.headers))
    projects.get_for(session, actor, project)


@router.get("/ray/{project}/dashboard/{path:path}")
async def dashboard(
    request: Request,
    project: str,
    path: str,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    client: ClientDep,
    backend: BackendDep,
) -> Response:
    ticket = request.query_params.get("ticket")
    if ticket:
        issued = await run_in_threadpool(
            tokens.redeem_ticket, session, settings, ticket, project, clock
        )
        response = RedirectResponse(f"{_prefix(project)}/{path}", status_code=303)
        response.set_cookie(
            COOKIE,
            issued.secret,
            max_age=settings.session_ttl_seconds,
            path=_prefix(project),
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
        )
        return response
    await run_in_threadpool(_check_viewer, request, session, settings, clock, client, project)
    base, auth_headers = backend.dashboard(project)
    headers = {k: v for k, v in request.headers.items() if k in FORWARDED} | auth_headers
    proxy: httpx.AsyncClient = request.app.state.proxy
    upstream = proxy.build_request(
        request.method, f"{base}/{path}", params=request.query_params, headers=headers
    )
    try:
        answer = await proxy.send(upstream, stream=True)
    except httpx.HTTPError as exc:
        raise BackendUnavailable(f"the Ray dashboard of {project!r} does not answer") from exc
    return StreamingResponse(
        answer.aiter_raw(),
        status_code=answer.status_code,
        headers={k: v for k, v in answer.headers.items() if k.lower() not in DROPPED},
        background=BackgroundTask(answer.aclose),
    )


# HEAD is GET without the body; it stays out of the API's schema, which names each operation once.
router.add_api_route(
    "/ray/{project}/dashboard/{path:path}", dashboard, methods=["HEAD"], include_in_schema=False
)


@router.api_route(
    "/ray/{project}/dashboard/{path:path}",
    methods=["POST", "PUT", "PATCH", "DELETE"],
    include_in_schema=False,
)
async def dashboard_changes(
    request: Request,
    project: str,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    client: ClientDep,
) -> Response:
    await run_in_threadpool(_check_viewer, request, session, settings, clock, client, project)
    raise MethodNotAllowed(
        "the Ray dashboard is read-only through Fabric; submit jobs with `fabric job submit` "
        f"or `ray job submit --address .../ray/{project}`"
    )
