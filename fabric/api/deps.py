"""What routes need, as typed dependencies: the session, the settings, the calling actor."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from fabric.auth.identity import client_address, remote_user
from fabric.backends.base import ComputeBackend
from fabric.clock import Clock
from fabric.config import Settings
from fabric.errors import Unauthenticated
from fabric.services.tenancy import tokens, users
from fabric.services.tenancy.actor import Actor


async def get_session(request: Request) -> AsyncIterator[Session]:
    """A session per request, closed on the event loop.

    Closing here, rather than in a sync dependency, needs no worker thread: a request that
    finished must give its connection back even when every worker thread is busy, or busy
    requests would wait on the pool while finished ones wait on a thread.
    """
    session = request.app.state.sessionmaker()
    try:
        yield session
    finally:
        session.close()


# The trivial dependencies are async: a sync one costs a hop to a worker thread per request.
async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_clock(request: Request) -> Clock:
    return request.app.state.clock


async def get_backend(request: Request) -> ComputeBackend:
    return request.app.state.backend


SessionDep = Annotated[Session, Depends(get_session)]
BackendDep = Annotated[ComputeBackend, Depends(get_backend)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
ClockDep = Annotated[Clock, Depends(get_clock)]


async def get_client(request: Request, settings: SettingsDep) -> str:
    peer = request.client.host if request.client else "unknown"
    return client_address(settings, peer, request.headers.get("x-forwarded-for"))


ClientDep = Annotated[str, Depends(get_client)]


NO_TOKEN = "authentication required: send 'Authorization: Bearer TOKEN'"


def authenticate(
    session: Session,
    settings: Settings,
    clock: Clock,
    client: str,
    peer: str,
    headers: dict[str, str],
) -> Actor:
    """Who sends the request: a trusted proxy's remote user, or the owner of a bearer token.

    Shared by HTTP routes and websockets, which FastAPI's security helpers do not serve.
    """
    sso_name = remote_user(settings, peer, headers)
    if sso_name is not None:
        user = users.from_sso(session, settings, clock, sso_name, client)
    else:
        scheme, _, secret = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise Unauthenticated(NO_TOKEN)
        user = tokens.resolve(session, secret.strip(), clock)
    # End the read transaction: the connection goes back to the pool while this request
    # waits for a worker thread to run its route.
    session.commit()
    return Actor(user, client, clock)


def get_actor(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    client: ClientDep,
) -> Actor:
    peer = request.client.host if request.client else ""
    return authenticate(session, settings, clock, client, peer, dict(request.headers))


ActorDep = Annotated[Actor, Depends(get_actor)]
