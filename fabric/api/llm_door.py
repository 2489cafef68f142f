"""Calls of llm endpoints through the door: OpenAI's API, streamed, limited and metered.

The engine (Ray Serve's LLM app around vLLM) speaks OpenAI's API; the door passes calls on
as they are, with three changes a client never has to make: a streamed call asks the engine
for its usage in the last chunk (dropped again unless the client asked for it), errors the
door itself gives are OpenAI-shaped (`{"error": {"message", "type", "code"}}`), and the
stream is relayed chunk by chunk, so the first token reaches the client as soon as the engine
has it. From what passes the door counts tokens (metrics, usage rows), time to the first
token and between tokens, and each caller's rate limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from fabric.api import errors
from fabric.api.endpoint_gate import Pass
from fabric.api.endpoint_metrics import EndpointMetrics
from fabric.api.rate_limits import RateLimiter
from fabric.clock import Clock
from fabric.errors import FabricError, RateLimited
from fabric.services import registry
from fabric.services.serving import token_usage

log = logging.getLogger("fabric.llm_door")
# OpenAI's error types by status, as its clients read them.
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    503: "service_unavailable",
}
# OpenAI's codes for the door's own refusals that have one.
ERROR_CODES = {401: "invalid_api_key", 429: "rate_limit_exceeded"}
# A long answer of a big model comes slowly, and a queued call waits for the engine: give
# either ten minutes between two chunks (connecting stays quick to fail).
LLM_TIMEOUT = httpx.Timeout(600, connect=5)
# The engine's list of models, which the door completes with the adapters.
MODELS = "/v1/models"
# Kept from the engine's answer.
RETURNED = ("content-type", "cache-control")
# Usage rows being written, kept so that the event loop does not drop them half way.
_writes: set[asyncio.Task[None]] = set()


def openai_error(
    status: int, message: str, code: str | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    kind = ERROR_TYPES.get(status, "api_error")
    body = {"error": {"message": message, "type": kind, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


def refused(exc: FabricError) -> JSONResponse:
    """A refusal of the door's own (no key, unknown endpoint, over the rate) as OpenAI's."""
    return openai_error(
        exc.status_code, exc.message, ERROR_CODES.get(exc.status_code), errors.headers_of(exc)
    )


def _engine_error(status: int, content: bytes) -> Response:
    """The engine's refusal as OpenAI's clients read it: Ray's ingress answers some of its own
    (an unknown model) as FastAPI's `{"detail": ...}`, which they would show as a bare code."""
    try:
        body = json.loads(content)
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return Response(content, status_code=status, media_type="application/json")
    message = body.get("detail") or body.get("message") if isinstance(body, dict) else None
    text = message if isinstance(message, str) else content.decode(errors="replace")[:500]
    return openai_error(status, text or f"the engine answered {status}")


@dataclass
class Tally:
    """What the door saw of an answer."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    counted: bool = False
    first_token: float | None = None
    gaps: list[float] = field(default_factory=list)
    last_token: float | None = None

    def usage(self, usage: Any) -> None:
        if isinstance(usage, dict):
            self.prompt_tokens = int(usage.get("prompt_tokens") or 0)
            self.completion_tokens = int(usage.get("completion_tokens") or 0)
            self.counted = True

    def token(self, started: float) -> None:
        now = time.perf_counter()
        if self.first_token is None:
            self.first_token = now - started
        elif self.last_token is not None:
            self.gaps.append(now - self.last_token)
        self.last_token = now


def prepare(body: bytes, base: str) -> tuple[bytes, bool]:
    """The body to send on, and whether the client asked for a stream's usage chunk: an
    adapter named alone (`tone`) is named as Serve routes it (`BASE:tone`), and a streamed
    call asks for usage in its last chunk. A body that is not a JSON object goes on as it is,
    for the engine to refuse in its words."""
    try:
        payload = json.loads(body) if body else None
    except ValueError:
        return body, False
    if not isinstance(payload, dict):
        return body, False
    model = payload.get("model")
    changed = isinstance(model, str) and model != base and ":" not in model
    if changed:
        payload["model"] = f"{base}:{model}"
    asked = False
    if payload.get("stream") is True:
        options = payload.get("stream_options")
        options = dict(options) if isinstance(options, dict) else {}
        asked = bool(options.get("include_usage"))
        options["include_usage"] = True
        payload["stream_options"] = options
        changed = True
    return (json.dumps(payload).encode() if changed else body), asked


def _event(event: bytes, keep_usage: bool, tally: Tally, started: float) -> bool:
    """Read one SSE event of a stream; False for the usage chunk the client did not ask for."""
    data = b"".join(line[5:].strip() for line in event.split(b"\n") if line.startswith(b"data:"))
    if not data or data == b"[DONE]":
        return True
    if b'"usage":{' not in data:
        # A token's chunk, as vLLM writes it (compact JSON): no need to parse it.
        if b'"choices":[{' in data:
            tally.token(started)
        return True
    try:
        chunk = json.loads(data)
    except ValueError:
        return True
    if not isinstance(chunk, dict):
        return True
    if chunk.get("usage"):
        tally.usage(chunk["usage"])
    if chunk.get("choices"):
        tally.token(started)
        return True
    return keep_usage or not chunk.get("usage")


async def _relay(
    answer: httpx.Response,
    keep_usage: bool,
    tally: Tally,
    started: float,
    done: Callable[[int], None],
) -> AsyncIterator[bytes]:
    """The engine's stream, event by event as it comes; then the answer is closed and
    counted, also when the client went away half way (its usage chunk never came then, so
    the call's tokens go uncounted)."""
    pending = b""
    try:
        async for piece in answer.aiter_raw():
            pending = (pending + piece).replace(b"\r\n", b"\n")
            while b"\n\n" in pending:
                event, pending = pending.split(b"\n\n", 1)
                if _event(event, keep_usage, tally, started):
                    yield event + b"\n\n"
        if pending.strip():
            yield pending
    finally:
        await answer.aclose()
        done(answer.status_code)


class LlmDoor:
    """One server's llm calls: where they are counted and limited."""

    def __init__(
        self,
        metrics: EndpointMetrics,
        limiter: RateLimiter,
        sessions: sessionmaker[Session],
        clock: Clock,
    ) -> None:
        self._metrics = metrics
        self._limiter = limiter
        self._sessions = sessions
        self._clock = clock

    async def call(
        self,
        request: Request,
        proxy: httpx.AsyncClient,
        url: str,
        headers: dict[str, str],
        project: str,
        endpoint: str,
        admitted: Pass,
        started: float,
    ) -> Response:
        try:
            entry = self._limiter.admit(
                (project, endpoint),
                admitted.caller,
                admitted.requests_per_minute,
                admitted.tokens_per_minute,
            )
        except RateLimited as exc:
            self._metrics.observe(project, endpoint, admitted.label, 429, 0.0)
            return refused(exc)
        body, keep_usage = prepare(await request.body(), admitted.model)
        tally = Tally()

        def finish(status: int) -> None:
            seconds = time.perf_counter() - started
            self._finish(project, endpoint, admitted, entry, tally, status, seconds)

        try:
            answer = await proxy.send(
                proxy.build_request(
                    request.method, url, content=body, headers=headers, timeout=LLM_TIMEOUT
                ),
                stream=True,
            )
        except httpx.HTTPError as exc:
            finish(503)
            return openai_error(
                503, f"endpoint {project}/{endpoint} is not serving now: {exc}", "not_serving"
            )
        kept = {name: answer.headers[name] for name in RETURNED if name in answer.headers}
        streamed = answer.headers.get("content-type", "").startswith("text/event-stream")
        if answer.status_code < 400 and streamed:
            return StreamingResponse(
                _relay(answer, keep_usage, tally, started, finish),
                status_code=answer.status_code,
                headers=kept,
            )
        content = await answer.aread()
        await answer.aclose()
        if answer.status_code in (404, 503) and not kept.get("content-type", "").startswith(
            "application/json"
        ):
            # Serve's proxy, not the engine: the application is not (yet) running.
            finish(503)
            return openai_error(
                503,
                f"endpoint {project}/{endpoint} is not serving now (starting, or stopped): "
                f"{content.decode(errors='replace')[:200]}",
                "not_serving",
                {"Retry-After": "10"},
            )
        if answer.status_code >= 400:
            finish(answer.status_code)
            return _engine_error(answer.status_code, content)
        with contextlib.suppress(ValueError, AttributeError):
            tally.usage(json.loads(content).get("usage"))
        finish(answer.status_code)
        if request.method == "GET" and url.endswith(MODELS):
            content = await self._with_adapters(content, admitted)
        return Response(content, status_code=answer.status_code, headers=kept)

    async def _with_adapters(self, content: bytes, admitted: Pass) -> bytes:
        """The engine's model list with the project's adapters of its base, which it loads on
        demand and so cannot list itself."""
        listed = json.loads(content)
        names = await run_in_threadpool(self._adapters, admitted)
        base = admitted.model
        card = next((m for m in listed.get("data", []) if m.get("id") == base), {})
        for name in names:
            listed["data"].append({**card, "id": f"{base}:{name}", "parent": base})
        return json.dumps(listed).encode()

    def _record(self, call: token_usage.Call) -> None:
        try:
            token_usage.record(self._sessions, call)
        except SQLAlchemyError as exc:
            # The answer has gone out; its tokens are in the metrics, if not in the report.
            log.warning("tokens of a call of %s not recorded: %s", call.endpoint, exc)

    def _adapters(self, admitted: Pass) -> list[str]:
        with self._sessions() as session:
            return registry.adapter_names(
                session, admitted.project_id, admitted.model, admitted.version
            )

    def _finish(
        self,
        project: str,
        endpoint: str,
        admitted: Pass,
        entry: list[float] | None,
        tally: Tally,
        status: int,
        seconds: float,
    ) -> None:
        label = admitted.label
        self._metrics.observe(project, endpoint, label, status, seconds)
        if not tally.counted:
            return
        prompt, completion = tally.prompt_tokens, tally.completion_tokens
        self._limiter.spend(entry, prompt + completion)
        self._metrics.observe_tokens(project, endpoint, label, prompt, completion)
        self._metrics.observe_stream(project, endpoint, label, tally.first_token, tally.gaps)
        self._metrics.observe_rate(project, endpoint, label, completion, seconds)
        call = token_usage.Call(
            project_id=admitted.project_id,
            endpoint=endpoint,
            model=label,
            key_id=admitted.key_id,
            key_name=admitted.key_name,
            user_id=admitted.user_id,
            prompt_tokens=prompt,
            completion_tokens=completion,
            at=self._clock.now(),
        )
        task = asyncio.get_running_loop().create_task(run_in_threadpool(self._record, call))
        _writes.add(task)
        task.add_done_callback(_writes.discard)
