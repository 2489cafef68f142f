"""Database leases: one holder at a time for work that must not run twice (the reconciler).

A holder takes a named lease, or renews its own, with one conditional UPDATE (the lease is
its own or has expired), and inserts the row the first time. It commits at once, before any
work, so that every other server sees who holds it. A holder that dies simply stops renewing:
another takes over once the lease expires. Times come from the injected clock; servers'
clocks must agree to well within a lease's duration.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fabric.clock import Clock
from fabric.db.dml import rows_changed
from fabric.db.models import LeaseModel


def _this_process() -> str:
    return f"{socket.gethostname()} pid {os.getpid()}"[:255]


@dataclass(frozen=True)
class Holder:
    """Who holds a lease: a random id (unique per holder, even in one process) and, for
    humans, the host and process it runs in."""

    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    name: str = field(default_factory=_this_process)


def acquire(
    session: Session, name: str, holder: Holder, clock: Clock, duration: timedelta
) -> datetime | None:
    """Take or renew the lease until now + duration; its expiry, or None when another holds it.

    Commits before it returns, whichever way it went.
    """
    session.commit()
    now = clock.now()
    expires_at = now + duration
    renewed = rows_changed(
        session,
        update(LeaseModel)
        .where(
            LeaseModel.name == name,
            or_(LeaseModel.holder == holder.id, LeaseModel.expires_at <= now),
        )
        .values(holder=holder.id, holder_name=holder.name, expires_at=expires_at)
        .execution_options(synchronize_session=False),
    )
    if renewed == 1:
        session.commit()
        return expires_at
    if session.scalar(select(LeaseModel.name).where(LeaseModel.name == name)) is not None:
        session.rollback()
        return None
    try:
        session.execute(
            insert(LeaseModel).values(
                name=name, holder=holder.id, holder_name=holder.name, expires_at=expires_at
            )
        )
        session.commit()
    except IntegrityError:
        # Another holder inserted the row first: the lease is theirs.
        session.rollback()
        return None
    return expires_at


def release(session: Session, name: str, holder: Holder) -> None:
    """Give the lease up, if this holder has it, so another takes over without waiting."""
    session.commit()
    session.execute(
        delete(LeaseModel)
        .where(LeaseModel.name == name, LeaseModel.holder == holder.id)
        .execution_options(synchronize_session=False)
    )
    session.commit()
