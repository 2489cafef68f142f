"""The platform-admin rule, in one place."""

from __future__ import annotations

from fabric.errors import Forbidden
from fabric.services.tenancy.actor import Actor


def require_admin(actor: Actor, action: str) -> None:
    if not actor.user.is_admin:
        raise Forbidden(f"only a platform admin may {action}")
