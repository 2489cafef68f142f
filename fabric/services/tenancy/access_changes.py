"""Who may call what changed: told by the services, heard by whoever remembers the answer.

The server's endpoint gate (`fabric.api.endpoint_gate`) remembers for a few seconds who may
call an endpoint. The services that change the answer (a member removed, a token or an
endpoint key revoked, an endpoint's spec changed) note it on their session; once that
session commits, every subscriber is told, so the gate forgets at once and the services
need not know it exists. Told after the commit, never before: a call checked in between
would otherwise be remembered as it was.

Other servers on the same database are not told; they forget within their cache's lifetime.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

Listener = Callable[[], None]

_NOTED = "fabric.access_changed"
_listeners: list[Listener] = []
_lock = threading.Lock()


def note(session: Session) -> None:
    """Tell the subscribers, once `session` commits, that access changed."""
    session.info[_NOTED] = True


def subscribe(listener: Listener) -> Callable[[], None]:
    """Call `listener` after each committed change; the function that stops it."""
    with _lock:
        _listeners.append(listener)

    def unsubscribe() -> None:
        with _lock:
            _listeners.remove(listener)

    return unsubscribe


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    if session.info.pop(_NOTED, False):
        with _lock:
            listeners = list(_listeners)
        for listener in listeners:
            listener()


@event.listens_for(Session, "after_soft_rollback")
def _rolled_back(session: Session, previous: SessionTransaction) -> None:
    # A savepoint rolled back leaves the change around it to commit.
    if not previous.nested:
        session.info.pop(_NOTED, None)
