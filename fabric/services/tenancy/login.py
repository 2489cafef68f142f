"""Password login with rate limits per username and per client address."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from fabric.auth.passwords import verify_password
from fabric.clock import Clock
from fabric.config import Settings
from fabric.db.models import LoginAttemptModel, UserModel
from fabric.errors import RateLimited, Unauthenticated
from fabric.services.tenancy import audit, tokens
from fabric.services.tenancy.actor import Actor


def _failures(
    session: Session, column: InstrumentedAttribute[str], value: str, since: datetime
) -> int:
    stmt = (
        select(func.count())
        .select_from(LoginAttemptModel)
        .where(column == value, LoginAttemptModel.at >= since)
    )
    return session.scalar(stmt) or 0


def _check_limits(
    session: Session, settings: Settings, username: str, client: str, clock: Clock
) -> None:
    since = clock.now() - timedelta(seconds=settings.login_window_seconds)
    retry = settings.login_window_seconds
    if (
        _failures(session, LoginAttemptModel.username, username, since)
        >= settings.login_max_failures
    ):
        raise RateLimited(f"too many failed logins for {username!r}; try again later", retry)
    if (
        _failures(session, LoginAttemptModel.client, client, since)
        >= settings.login_client_max_failures
    ):
        raise RateLimited("too many failed logins from your address; try again later", retry)


def login(
    session: Session, settings: Settings, clock: Clock, *, username: str, password: str, client: str
) -> tokens.Issued:
    username = username.strip().lower()[:255]
    _check_limits(session, settings, username, client, clock)
    user = session.scalar(select(UserModel).where(UserModel.username == username))
    # Verify even for unknown users so that timing does not reveal which usernames exist.
    valid = verify_password(user.password_hash if user else None, password)
    if user is None or not valid or user.disabled:
        now = clock.now()
        expired = now - timedelta(seconds=settings.login_window_seconds)
        session.execute(delete(LoginAttemptModel).where(LoginAttemptModel.at < expired))
        session.add(LoginAttemptModel(username=username, client=client, at=now))
        session.commit()
        raise Unauthenticated("wrong username or password")
    session.execute(delete(LoginAttemptModel).where(LoginAttemptModel.username == username))
    issued = tokens.issue_session(session, settings, user, clock)
    audit.record(session, Actor(user, client, clock), "auth.login", "user", username)
    session.commit()
    return issued
