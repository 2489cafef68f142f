"""Turn errors into JSON bodies that say what to fix, in one place; never a stack trace."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fabric.backends.base import BackendUnavailable
from fabric.errors import FabricError, QuotaExceeded, RateLimited, Unauthenticated
from fabric.runtime import messages

log = logging.getLogger("fabric.api")


class PlainUnauthenticated(Unauthenticated):
    """A 401 answered in plain text, as Ray's own head answers it: Ray's tools print the body
    as it came, and JSON would escape the quotes of the header the message says to pass."""


def _field(loc: messages.Location) -> str:
    return ".".join(str(part) for part in loc if part != "body") or "body"


def headers_of(exc: FabricError) -> dict[str, str]:
    """What an error's answer says in its headers, whatever shape its body has: when to try
    again after a rate limit, and how to authenticate after a 401."""
    headers = {}
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
    if exc.status_code == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return headers


def install(app: FastAPI) -> None:
    @app.exception_handler(FabricError)
    async def fabric_error(_: Request, exc: FabricError) -> JSONResponse:
        body: dict[str, object] = {"detail": exc.message}
        if isinstance(exc, QuotaExceeded):
            body["may_fit_later"] = exc.may_fit_later
        return JSONResponse(body, status_code=exc.status_code, headers=headers_of(exc))

    @app.exception_handler(PlainUnauthenticated)
    async def plain_unauthenticated(_: Request, exc: PlainUnauthenticated) -> PlainTextResponse:
        return PlainTextResponse(
            exc.message, status_code=401, headers={"WWW-Authenticate": "Bearer"}
        )

    @app.exception_handler(BackendUnavailable)
    async def backend_unavailable(_: Request, exc: BackendUnavailable) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        # The submitted values are left out on purpose: they may hold passwords.
        found = messages.problems(exc, _field)
        errors = [{"field": field, "message": message} for field, message in found]
        detail = messages.describe(exc, _field)
        return JSONResponse({"detail": detail, "errors": errors}, status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)

    app.add_middleware(CatchAll)


class CatchAll:
    """Answer an unexpected error with a plain 500 and log it once.

    Starlette's own handler for `Exception` re-raises after answering, which makes the server
    drop the client's connection; this one keeps it open for the client's next request.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            log.exception("unhandled error on %s %s", scope["method"], scope["path"])
            if started:
                raise
            response = JSONResponse(
                {"detail": "internal error; the server log has the details"}, status_code=500
            )
            await response(scope, receive, send)
