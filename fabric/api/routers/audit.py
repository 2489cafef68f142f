"""The platform-wide audit trail, for admins."""

from __future__ import annotations

from fastapi import APIRouter, Query
from pydantic import AwareDatetime

from fabric.api.deps import ActorDep, SessionDep
from fabric.api.schemas.tenancy import AuditEventPublic
from fabric.services.tenancy import history

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


@router.get("")
def platform_audit(
    session: SessionDep,
    actor: ActorDep,
    project: str | None = None,
    user: str | None = None,
    action: str | None = None,
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
    limit: int = Query(default=100, ge=1, le=1000),
) -> list[AuditEventPublic]:
    events = history.for_platform(
        session,
        actor,
        project=project,
        user=user,
        action=action,
        since=since,
        until=until,
        limit=limit,
    )
    return [AuditEventPublic.model_validate(e) for e in events]
