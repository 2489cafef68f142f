"""A project's quotas, and allocations admitted against them."""

from __future__ import annotations

from fastapi import APIRouter

from fabric.api.deps import ActorDep, SessionDep
from fabric.api.schemas.quotas import AllocationCreate, AllocationPublic, QuotaPublic, QuotaSet
from fabric.db.models import AllocationModel
from fabric.quota.engine import Kind, Period
from fabric.services.quotas import admission as allocations
from fabric.services.quotas import limits

router = APIRouter(prefix="/api/v1/projects/{project}", tags=["quotas"])


@router.get("/quotas")
def show_quotas(project: str, session: SessionDep, actor: ActorDep) -> list[QuotaPublic]:
    return [
        QuotaPublic(
            resource=s.quota.resource,
            kind=Kind(s.quota.kind),
            limit=s.quota.limit,
            period=Period(s.quota.period) if s.quota.period else None,
            user=s.quota.user.username if s.quota.user else None,
            used=s.used,
        )
        for s in limits.show(session, actor, project)
    ]


@router.put("/quotas", status_code=204)
def set_quota(project: str, body: QuotaSet, session: SessionDep, actor: ActorDep) -> None:
    limits.set_limit(
        session,
        actor,
        project,
        resource=body.resource,
        kind=body.kind,
        limit=body.limit,
        period=body.period,
        username=body.user,
    )


@router.delete("/quotas", status_code=204)
def remove_quota(
    project: str,
    resource: str,
    kind: Kind,
    session: SessionDep,
    actor: ActorDep,
    user: str | None = None,
) -> None:
    limits.remove_limit(session, actor, project, resource=resource, kind=kind, username=user)


def _allocation(row: AllocationModel) -> AllocationPublic:
    return AllocationPublic(
        id=row.id,
        user=row.user.username,
        pool=row.pool.name if row.pool else None,
        purpose=row.purpose,
        resources=row.resources,
        state=row.state,
        created_at=row.created_at,
        released_at=row.released_at,
    )


@router.post("/allocations", status_code=201)
def create_allocation(
    project: str, body: AllocationCreate, session: SessionDep, actor: ActorDep
) -> AllocationPublic:
    row = allocations.admit(session, actor, project, **body.model_dump())
    return _allocation(row)


@router.get("/allocations")
def list_allocations(
    project: str, session: SessionDep, actor: ActorDep, state: str | None = None
) -> list[AllocationPublic]:
    return [_allocation(a) for a in allocations.list_for(session, actor, project, state=state)]


@router.get("/allocations/{allocation_id}")
def get_allocation(
    project: str, allocation_id: int, session: SessionDep, actor: ActorDep
) -> AllocationPublic:
    return _allocation(allocations.get(session, actor, project, allocation_id))


@router.post("/allocations/{allocation_id}/release")
def release_allocation(
    project: str, allocation_id: int, session: SessionDep, actor: ActorDep
) -> AllocationPublic:
    return _allocation(allocations.release(session, actor, project, allocation_id))
