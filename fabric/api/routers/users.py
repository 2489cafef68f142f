"""Users: admins manage them; everyone sees and changes their own."""

from __future__ import annotations

from fastapi import APIRouter

from fabric.api.deps import ActorDep, SessionDep, SettingsDep
from fabric.api.schemas.tenancy import PasswordChange, UserCreate, UserPublic, UserUpdate
from fabric.services.tenancy import users

router = APIRouter(prefix="/api/v1/users", tags=["users"])


@router.get("/me")
def me(actor: ActorDep) -> UserPublic:
    return UserPublic.model_validate(actor.user)


@router.post("/me/password", status_code=204)
def change_password(
    body: PasswordChange, session: SessionDep, settings: SettingsDep, actor: ActorDep
) -> None:
    users.change_own_password(session, settings, actor, body.current_password, body.new_password)


@router.post("", status_code=201)
def create_user(
    body: UserCreate, session: SessionDep, settings: SettingsDep, actor: ActorDep
) -> UserPublic:
    user = users.create(session, settings, actor, **body.model_dump())
    return UserPublic.model_validate(user)


@router.get("")
def list_users(session: SessionDep, actor: ActorDep) -> list[UserPublic]:
    return [UserPublic.model_validate(u) for u in users.list_all(session, actor)]


@router.get("/{username}")
def get_user(username: str, session: SessionDep, actor: ActorDep) -> UserPublic:
    return UserPublic.model_validate(users.get_visible(session, actor, username))


@router.patch("/{username}")
def update_user(
    username: str, body: UserUpdate, session: SessionDep, settings: SettingsDep, actor: ActorDep
) -> UserPublic:
    user = users.update(session, settings, actor, username, **body.model_dump())
    return UserPublic.model_validate(user)
