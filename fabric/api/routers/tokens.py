"""Personal API tokens of the caller."""

from __future__ import annotations

from fastapi import APIRouter

from fabric.api.deps import ActorDep, SessionDep, SettingsDep
from fabric.api.schemas.tenancy import TokenCreate, TokenCreated, TokenPublic
from fabric.services.tenancy import tokens

router = APIRouter(prefix="/api/v1/tokens", tags=["tokens"])


@router.post("", status_code=201)
def create_token(
    body: TokenCreate, session: SessionDep, settings: SettingsDep, actor: ActorDep
) -> TokenCreated:
    issued = tokens.create_api_token(
        session, settings, actor, name=body.name, days=body.expires_in_days
    )
    return TokenCreated.model_validate(
        {**TokenPublic.model_validate(issued.token).model_dump(), "token": issued.secret}
    )


@router.get("")
def list_tokens(session: SessionDep, actor: ActorDep) -> list[TokenPublic]:
    return [TokenPublic.model_validate(t) for t in tokens.list_api_tokens(session, actor)]


@router.delete("/{token_id}", status_code=204)
def revoke_token(token_id: int, session: SessionDep, actor: ActorDep) -> None:
    tokens.revoke(session, actor, token_id)
