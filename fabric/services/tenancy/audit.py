"""The audit trail: one row per change, written in the same transaction as the change."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fabric.db.models import AuditEventModel
from fabric.services.tenancy.actor import Actor


def record(
    session: Session,
    actor: Actor,
    action: str,
    object_type: str,
    object_name: str,
    *,
    project: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    session.add(
        AuditEventModel(
            at=actor.now(),
            actor=actor.name,
            client=actor.client,
            action=action,
            object_type=object_type,
            object_name=object_name,
            project=project,
            detail=detail or {},
        )
    )


def query(
    session: Session,
    *,
    project: str | None = None,
    actor: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
) -> list[AuditEventModel]:
    stmt = select(AuditEventModel).order_by(AuditEventModel.id.desc()).limit(limit)
    if project is not None:
        stmt = stmt.where(AuditEventModel.project == project)
    if actor is not None:
        stmt = stmt.where(AuditEventModel.actor == actor)
    if action is not None:
        stmt = stmt.where(AuditEventModel.action.startswith(action))
    if since is not None:
        stmt = stmt.where(AuditEventModel.at >= since)
    if until is not None:
        stmt = stmt.where(AuditEventModel.at < until)
    return list(session.scalars(stmt))
