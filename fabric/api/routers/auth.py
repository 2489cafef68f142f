"""Login and logout."""

from __future__ import annotations

from fastapi import APIRouter, Request

from fabric.api.deps import ActorDep, ClientDep, ClockDep, SessionDep, SettingsDep
from fabric.api.schemas.tenancy import LoginRequest, LoginResponse
from fabric.services.tenancy import login, tokens

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


@router.post("/login")
def do_login(
    body: LoginRequest,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    client: ClientDep,
) -> LoginResponse:
    issued = login.login(
        session, settings, clock, username=body.username, password=body.password, client=client
    )
    return LoginResponse(access_token=issued.secret, expires_at=issued.token.expires_at)


@router.post("/logout", status_code=204)
def do_logout(request: Request, session: SessionDep, actor: ActorDep) -> None:
    secret = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
    tokens.revoke_secret(session, actor, secret)
