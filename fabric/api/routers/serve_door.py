"""`/serve/{project}/{endpoint}/...`: endpoint calls, checked here and passed on to Serve.

Serve's own ingress has no authentication and listens on loopback (or, on KubeRay, only
for the server's pods), so every call comes through this door: a member's token, an
endpoint's API key, or nothing when the endpoint is anonymous. The door also counts each
call (`/metrics`) and copies a share of calls to a shadow version when the endpoint mirrors;
the copies' answers are discarded and only their outcome is counted.
"""

from __future__ import annotations

import asyncio
import random
import time

import httpx
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from fabric.api import llm_door
from fabric.api.endpoint_gate import EndpointGate
from fabric.api.endpoint_metrics import EndpointMetrics
from fabric.api.rate_limits import RateLimiter
from fabric.errors import FabricError
from fabric.runtime.serve_contract import ANSWERED_HEADER, VERSION_HEADER
from fabric.services.serving.serve_config import route_prefix

router = APIRouter(tags=["endpoints"])

# Sent on to Serve: the body's type, what the caller accepts, and a version it asks for.
FORWARDED = ("content-type", "accept", VERSION_HEADER)
# Kept from Serve's answer: the body's type, and the version that answered.
RETURNED = ("content-type", ANSWERED_HEADER)
# Where an llm endpoint's OpenAI API lies under the endpoint's path.
OPENAI_PREFIX = "v1/"
# Copies in flight, kept so that the event loop does not drop them half way.
_mirrors: set[asyncio.Task[None]] = set()


def _secret(request: Request) -> str | None:
    scheme, _, secret = request.headers.get("authorization", "").partition(" ")
    return secret.strip() if scheme.lower() == "bearer" and secret.strip() else None


@router.api_route("/serve/{project}/{endpoint}", methods=["GET", "POST"], include_in_schema=False)
@router.get("/serve/{project}/{endpoint}/{path:path}", include_in_schema=False)
@router.post("/serve/{project}/{endpoint}/{path:path}")
async def call_endpoint(request: Request, project: str, endpoint: str, path: str = "") -> Response:
    """Call an endpoint: `POST .../predict` with `{"instances": [...]}` or `{"instance": {...}}`;
    an llm endpoint, OpenAI's API under `.../v1/` (`chat/completions`, `completions`, ...)."""
    started = time.perf_counter()
    state = request.app.state
    gate: EndpointGate = state.gate
    metrics: EndpointMetrics = state.endpoint_metrics
    try:
        admitted = await gate.admit(project, endpoint, _secret(request))
    except FabricError as exc:
        # OpenAI's clients read their errors in OpenAI's shape.
        if path.startswith(OPENAI_PREFIX):
            return llm_door.refused(exc)
        raise
    proxy: httpx.AsyncClient = state.proxy
    url = f"{admitted.address}{route_prefix(project, endpoint)}/{path}"
    headers = {name: request.headers[name] for name in FORWARDED if name in request.headers}
    if admitted.llm:
        door: llm_door.LlmDoor = state.llm_door
        return await door.call(request, proxy, url, headers, project, endpoint, admitted, started)
    rate_limiter: RateLimiter = state.rate_limiter
    rate_limiter.admit((project, endpoint), admitted.caller, admitted.requests_per_minute, None)
    body = await request.body()
    try:
        answer = await proxy.request(request.method, url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        metrics.observe(project, endpoint, "none", 503, time.perf_counter() - started)
        return JSONResponse(
            {"detail": f"endpoint {project}/{endpoint} is not serving now: {exc}"},
            status_code=503,
        )
    version = answer.headers.get(ANSWERED_HEADER, "none")
    metrics.observe(project, endpoint, version, answer.status_code, time.perf_counter() - started)
    if (
        admitted.mirror
        and request.method == "POST"
        and random.random() * 100 < admitted.mirror_percent
    ):
        task = asyncio.create_task(
            _mirror(proxy, metrics, url, body, headers, project, endpoint, admitted.mirror)
        )
        _mirrors.add(task)
        task.add_done_callback(_mirrors.discard)
    kept = {name: answer.headers[name] for name in RETURNED if name in answer.headers}
    return Response(answer.content, status_code=answer.status_code, headers=kept)


async def _mirror(
    proxy: httpx.AsyncClient,
    metrics: EndpointMetrics,
    url: str,
    body: bytes,
    headers: dict[str, str],
    project: str,
    endpoint: str,
    shadow: str,
) -> None:
    try:
        answer = await proxy.post(url, content=body, headers={**headers, VERSION_HEADER: shadow})
        ok = answer.status_code < 400
    except httpx.HTTPError:
        ok = False
    metrics.mirror(project, endpoint, shadow, ok)
