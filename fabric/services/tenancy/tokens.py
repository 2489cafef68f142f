"""Tokens: login sessions that expire soon, personal API tokens that expire later, a job's
token for its run, and the dashboard's one-minute tickets and project-bound browser sessions.

All are stored as SHA-256 digests; the secret is returned once, at creation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from fabric.auth import secrets
from fabric.clock import Clock
from fabric.config import Settings
from fabric.db.dml import rows_changed
from fabric.db.models import TokenModel, UserModel
from fabric.errors import InvalidSpec, NotFound, Unauthenticated
from fabric.services.tenancy import access_changes, audit
from fabric.services.tenancy.actor import Actor

# last_used_at is written at most this often, so that reads do not each cost a write.
_TOUCH_EVERY = timedelta(minutes=1)
# What may stand in an Authorization header; tickets and dashboard cookies may not.
BEARER_KINDS = frozenset({"session", "api", "job"})
TICKET_LIFETIME = timedelta(minutes=1)


@dataclass(frozen=True)
class Issued:
    token: TokenModel
    secret: str


def _issue(
    session: Session, user: UserModel, kind: str, name: str, clock: Clock, lifetime: timedelta
) -> Issued:
    new = secrets.new_secret(kind)
    now = clock.now()
    token = TokenModel(
        user_id=user.id,
        kind=kind,
        name=name,
        token_hash=new.digest,
        prefix=new.prefix,
        created_at=now,
        expires_at=now + lifetime,
    )
    session.add(token)
    return Issued(token, new.plain)


def issue_session(session: Session, settings: Settings, user: UserModel, clock: Clock) -> Issued:
    lifetime = timedelta(seconds=settings.session_ttl_seconds)
    return _issue(session, user, "session", "login", clock, lifetime)


def issue_job_token(
    session: Session, user: UserModel, job_name: str, clock: Clock, lifetime: timedelta
) -> Issued:
    """A token a job acts with on its user's behalf; revoked when the job ends."""
    return _issue(session, user, "job", job_name, clock, lifetime)


def revoke_job_tokens(session: Session, user_id: int, job_name: str, clock: Clock) -> None:
    for token in session.scalars(
        select(TokenModel).where(
            TokenModel.user_id == user_id,
            TokenModel.kind == "job",
            TokenModel.name == job_name,
            TokenModel.revoked_at.is_(None),
        )
    ):
        token.revoked_at = clock.now()
        access_changes.note(session)


def create_api_token(
    session: Session, settings: Settings, actor: Actor, *, name: str, days: int | None
) -> Issued:
    days = settings.api_token_default_days if days is None else days
    if not 0 < days <= settings.api_token_max_days:
        raise InvalidSpec(f"expires_in_days must be between 1 and {settings.api_token_max_days}")
    issued = _issue(session, actor.user, "api", name, actor.clock, timedelta(days=days))
    audit.record(session, actor, "token.create", "token", name, detail={"days": days})
    session.commit()
    return issued


def list_api_tokens(session: Session, actor: Actor) -> list[TokenModel]:
    stmt = (
        select(TokenModel)
        .where(TokenModel.user_id == actor.user.id, TokenModel.kind == "api")
        .order_by(TokenModel.id)
    )
    return list(session.scalars(stmt))


def revoke(session: Session, actor: Actor, token_id: int) -> None:
    token = session.get(TokenModel, token_id)
    if token is None or token.user_id != actor.user.id or token.kind != "api":
        raise NotFound(f"API token {token_id} not found")
    if token.revoked_at is None:
        token.revoked_at = actor.now()
        audit.record(session, actor, "token.revoke", "token", token.name)
        access_changes.note(session)
        session.commit()


def revoke_secret(session: Session, actor: Actor, secret: str) -> None:
    """Log out: end the login session whose secret the caller presented."""
    token = session.scalar(
        select(TokenModel).where(TokenModel.token_hash == secrets.digest(secret))
    )
    if token is not None and token.kind != "session":
        raise InvalidSpec("logout ends login sessions; revoke an API token with its own route")
    if token is not None and token.revoked_at is None:
        token.revoked_at = actor.now()
        audit.record(session, actor, "auth.logout", "token", token.name)
        access_changes.note(session)
        session.commit()


def issue_ticket(session: Session, actor: Actor, scope: str) -> Issued:
    """A single-use secret, good for a minute, that a browser trades for a `scope` session.

    It rides in a URL (a browser cannot send a bearer header on a page load), which is why
    it is worth so little: one use, one minute, one scope.
    """
    return _issue(session, actor.user, "ticket", scope, actor.clock, TICKET_LIFETIME)


def redeem_ticket(
    session: Session, settings: Settings, secret: str, scope: str, clock: Clock
) -> Issued:
    """Spend a ticket for a browser session bound to the same scope."""
    user = resolve(session, secret, clock, kinds=frozenset({"ticket"}), scope=scope)
    spent = rows_changed(
        session,
        update(TokenModel)
        .where(TokenModel.token_hash == secrets.digest(secret), TokenModel.revoked_at.is_(None))
        .values(revoked_at=clock.now()),
    )
    if spent != 1:
        session.rollback()
        raise Unauthenticated("this link was used already; open the dashboard again")
    lifetime = timedelta(seconds=settings.session_ttl_seconds)
    issued = _issue(session, user, "dashboard", scope, clock, lifetime)
    session.commit()
    return issued


def resolve(
    session: Session,
    secret: str,
    clock: Clock,
    *,
    kinds: frozenset[str] = BEARER_KINDS,
    scope: str | None = None,
) -> UserModel:
    """The user behind a secret of one of `kinds` (and `scope`), or Unauthenticated with why."""
    if not secrets.looks_like_token(secret):
        raise Unauthenticated("invalid token")
    token = session.scalar(
        select(TokenModel).where(TokenModel.token_hash == secrets.digest(secret))
    )
    now = clock.now()
    if token is None or token.kind not in kinds or (scope is not None and token.name != scope):
        raise Unauthenticated("invalid token")
    if token.revoked_at is not None:
        raise Unauthenticated("token revoked; log in again or create a new API token")
    if token.expires_at <= now:
        raise Unauthenticated("token expired; log in again or create a new API token")
    if token.user.disabled:
        raise Unauthenticated("user is disabled")
    if token.last_used_at is None or now - token.last_used_at > _TOUCH_EVERY:
        token.last_used_at = now
        session.commit()
    return token.user
