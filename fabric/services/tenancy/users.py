"""Users: creation, lookup, password changes, and the first admin."""

from __future__ import annotations

import secrets

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fabric import names
from fabric.auth.passwords import check_strength, hash_password, verify_password
from fabric.clock import Clock
from fabric.config import Settings
from fabric.db.models import TokenModel, UserModel
from fabric.errors import Conflict, Forbidden, InvalidSpec, NotFound, Unauthenticated
from fabric.services.tenancy import access_changes, audit
from fabric.services.tenancy.access import require_admin
from fabric.services.tenancy.actor import Actor


def get(session: Session, username: str) -> UserModel:
    user = session.scalar(select(UserModel).where(UserModel.username == username))
    if user is None:
        raise NotFound(f"user {username!r} not found")
    return user


def list_all(session: Session, actor: Actor) -> list[UserModel]:
    require_admin(actor, "list users")
    return list(session.scalars(select(UserModel).order_by(UserModel.username)))


def get_visible(session: Session, actor: Actor, username: str) -> UserModel:
    """A user's record, for an admin or for that user."""
    if actor.name != username:
        require_admin(actor, "read other users")
    return get(session, username)


def _new(
    settings: Settings,
    clock: Clock,
    username: str,
    password: str | None,
    email: str | None,
    is_admin: bool,
) -> UserModel:
    names.check(names.USERNAME, username, "username", names.USERNAME_HELP)
    if password is not None:
        check_strength(password, username, settings.password_min_length)
    return UserModel(
        username=username,
        email=email,
        password_hash=hash_password(password) if password is not None else None,
        is_admin=is_admin,
        disabled=False,
        created_at=clock.now(),
    )


def create(
    session: Session,
    settings: Settings,
    actor: Actor,
    *,
    username: str,
    password: str | None,
    email: str | None = None,
    is_admin: bool = False,
) -> UserModel:
    require_admin(actor, "create users")
    if session.scalar(select(UserModel.id).where(UserModel.username == username)):
        raise Conflict(f"user {username!r} already exists")
    user = _new(settings, actor.clock, username, password, email, is_admin)
    session.add(user)
    audit.record(session, actor, "user.create", "user", username, detail={"is_admin": is_admin})
    session.commit()
    return user


def update(
    session: Session,
    settings: Settings,
    actor: Actor,
    username: str,
    *,
    email: str | None = None,
    is_admin: bool | None = None,
    disabled: bool | None = None,
    password: str | None = None,
) -> UserModel:
    """Admin edits: email, admin flag, disabling, or setting a new password."""
    require_admin(actor, "change users")
    user = get(session, username)
    changed: dict[str, object] = {}
    if email is not None:
        user.email = changed["email"] = email
    if is_admin is not None:
        if not is_admin and user.id == actor.user.id:
            raise Conflict("you cannot take away your own admin rights")
        user.is_admin = changed["is_admin"] = is_admin
    if disabled is not None:
        if disabled and user.id == actor.user.id:
            raise Conflict("you cannot disable yourself")
        user.disabled = changed["disabled"] = disabled
        if disabled:
            _revoke_all_tokens(session, user, actor.clock)
    if password is not None:
        check_strength(password, username, settings.password_min_length)
        user.password_hash = hash_password(password)
        changed["password"] = "reset"
        _revoke_all_tokens(session, user, actor.clock)
    audit.record(session, actor, "user.update", "user", username, detail=changed)
    session.commit()
    return user


def change_own_password(
    session: Session, settings: Settings, actor: Actor, current: str, new: str
) -> None:
    user = actor.user
    if not verify_password(user.password_hash, current):
        raise Forbidden("the current password is wrong")
    check_strength(new, user.username, settings.password_min_length)
    user.password_hash = hash_password(new)
    audit.record(session, actor, "user.password", "user", user.username)
    session.commit()
    if user.is_admin:
        # The generated first password is no longer valid: drop the file that held it.
        settings.initial_password_file.unlink(missing_ok=True)


def _revoke_all_tokens(session: Session, user: UserModel, clock: Clock) -> None:
    for token in session.scalars(
        select(TokenModel).where(TokenModel.user_id == user.id, TokenModel.revoked_at.is_(None))
    ):
        token.revoked_at = clock.now()
        access_changes.note(session)


def ensure_admin(session: Session, settings: Settings, clock: Clock) -> str | None:
    """Create the first admin on an empty database.

    Returns a generated password when none was configured: the caller shows it once. No
    default password ever ships.
    """
    if session.scalar(select(func.count()).select_from(UserModel)):
        return None
    generated = None
    if settings.admin_password is not None:
        password = settings.admin_password.get_secret_value()
    else:
        password = generated = secrets.token_urlsafe(18)
    try:
        user = _new(settings, clock, settings.admin_user, password, None, is_admin=True)
    except InvalidSpec as exc:
        raise InvalidSpec(f"FABRIC_ADMIN_PASSWORD/FABRIC_ADMIN_USER: {exc.message}") from exc
    session.add(user)
    session.commit()
    return generated


def from_sso(
    session: Session, settings: Settings, clock: Clock, username: str, client: str
) -> UserModel:
    """The user a trusted SSO proxy named; created on first sight when autocreate is on."""
    user = session.scalar(select(UserModel).where(UserModel.username == username))
    if user is None:
        if not settings.remote_user_autocreate:
            raise Unauthenticated(f"SSO user {username!r} has no Fabric account; ask an admin")
        try:
            user = _new(settings, clock, username, None, None, is_admin=False)
        except InvalidSpec as exc:
            raise Unauthenticated(f"SSO user name is not usable here: {exc.message}") from exc
        session.add(user)
        session.flush()
        audit.record(
            session,
            Actor(user, client, clock),
            "user.create",
            "user",
            username,
            detail={"source": "sso"},
        )
        session.commit()
    if user.disabled:
        raise Unauthenticated("user is disabled")
    return user
