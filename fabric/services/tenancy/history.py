"""Reading the audit trail: admins see everything, project owners their project's."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from fabric.db.models import AuditEventModel
from fabric.services.tenancy import audit, projects
from fabric.services.tenancy.access import require_admin
from fabric.services.tenancy.actor import Actor
from fabric.services.tenancy.roles import Role


def for_platform(
    session: Session,
    actor: Actor,
    *,
    project: str | None = None,
    user: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
) -> list[AuditEventModel]:
    require_admin(actor, "read the whole audit log")
    return audit.query(
        session, project=project, actor=user, action=action, since=since, until=until, limit=limit
    )


def for_project(
    session: Session,
    actor: Actor,
    name: str,
    *,
    user: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
) -> list[AuditEventModel]:
    projects.get_for(session, actor, name, Role.OWNER)
    return audit.query(
        session, project=name, actor=user, action=action, since=since, until=until, limit=limit
    )
