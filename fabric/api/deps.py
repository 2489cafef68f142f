"""What routes need, as typed dependencies: the session, the settings, the calling actor."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from fabric.auth.identity import client_address, remote_user
from fabric.clock import Clock
from fabric.config import Settings
from fabric.errors import Unauthenticated
from fabric.services import tokens, users
from fabric.services.actor import Actor

_bearer = HTTPBearer(auto_error=False)


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


SessionDep = Annotated[Session, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
ClockDep = Annotated[Clock, Depends(get_clock)]


async def get_client(request: Request, settings: SettingsDep) -> str:
    peer = request.client.host if request.client else "unknown"
    return client_address(settings, peer, request.headers.get("x-forwarded-for"))


ClientDep = Annotated[str, Depends(get_client)]


def get_actor(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    client: ClientDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Actor:
    peer = request.client.host if request.client else ""
    sso_name = remote_user(settings, peer, dict(request.headers))
    if sso_name is not None:
        user = users.from_sso(session, settings, clock, sso_name, client)
    elif credentials is None:
        raise Unauthenticated("authentication required: send 'Authorization: Bearer TOKEN'")
    else:
        user = tokens.resolve(session, credentials.credentials, clock)
    # End the read transaction: the connection goes back to the pool while this request
    # waits for a worker thread to run its route.
    session.commit()
    return Actor(user, client, clock)


ActorDep = Annotated[Actor, Depends(get_actor)]
