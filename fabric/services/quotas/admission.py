"""Admission: resources granted against quota in one transaction, held until released.

Jobs, services, notebooks and HPO trials (later issues) each hold an allocation while they
run; releasing one meters its resource-seconds into the usage table.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from fabric import names
from fabric.db.models import (
    AllocationModel,
    EndpointModel,
    JobModel,
    PoolModel,
    ProjectModel,
    UsageModel,
)
from fabric.errors import Conflict, InvalidSpec, NotFound, QuotaExceeded
from fabric.quota import engine
from fabric.quota.engine import Scope
from fabric.services.quotas import limits as quotas
from fabric.services.tenancy import audit, pools, projects
from fabric.services.tenancy.actor import Actor
from fabric.services.tenancy.roles import Role


def check_resources(resources: dict[str, float]) -> None:
    if not resources:
        raise InvalidSpec('resources must name at least one resource, e.g. {"cpu": 1}')
    for resource, amount in resources.items():
        names.check(names.RESOURCE_NAME, resource, "resource name", names.RESOURCE_NAME_HELP)
        if amount <= 0:
            raise InvalidSpec(f"resources.{resource} must be greater than zero")


def lock_project(session: Session, project_id: int) -> None:
    """Serialise admissions of one project until this transaction ends.

    The UPDATE takes the row's write lock: PostgreSQL row-locks it, SQLite takes its database
    write lock. It must be the transaction's first statement, so any read transaction is
    ended first; then every admission sees what the ones before it committed.
    """
    session.commit()
    session.execute(
        update(ProjectModel)
        .where(ProjectModel.id == project_id)
        .values(admission_seq=ProjectModel.admission_seq + 1)
    )


def admit(
    session: Session,
    actor: Actor,
    project_name: str,
    *,
    resources: dict[str, float],
    pool: str | None = None,
    purpose: str = "",
    expected_seconds: float | None = None,
    metered_now: bool = True,
) -> AllocationModel:
    """Resources for the caller, held (and metered) from now; QuotaExceeded when refused.

    With `metered_now` False, metering waits for `start_metering`: a job's allocation is
    billed from its start on the cluster, not from its admission.
    """
    project, pool_row, request = _prepare(
        session, actor, project_name, resources, pool, expected_seconds
    )
    # A refusal read without the lock is as good as one under it (capacity may free a moment
    # later either way), and sparing the lock keeps a full project from stalling its releases.
    _decide(session, actor, project.id, request)
    lock_project(session, project.id)
    now = _decide(session, actor, project.id, request)
    allocation = _grant(
        session, actor, project, resources, pool_row, purpose, expected_seconds, now
    )
    if not metered_now:
        allocation.metered_from = None
    session.commit()
    return allocation


def start_metering(session: Session, allocation_id: int, at: datetime) -> None:
    """Meter the allocation from `at` on, unless it is metered already; the caller commits."""
    session.execute(
        update(AllocationModel)
        .where(AllocationModel.id == allocation_id, AllocationModel.metered_from.is_(None))
        .values(metered_from=at)
    )


def _grant(
    session: Session,
    actor: Actor,
    project: ProjectModel,
    resources: dict[str, float],
    pool: PoolModel | None,
    purpose: str,
    expected_seconds: float | None,
    now: datetime,
) -> AllocationModel:
    """The admitted allocation, recorded in the caller's transaction."""
    allocation = AllocationModel(
        project_id=project.id,
        user_id=actor.user.id,
        pool_id=pool.id if pool else None,
        purpose=purpose,
        resources=resources,
        expected_seconds=expected_seconds,
        state="active",
        created_at=now,
        metered_from=now,
    )
    session.add(allocation)
    session.flush()
    audit.record(
        session,
        actor,
        "allocation.create",
        "allocation",
        str(allocation.id),
        project=project.name,
        detail={"resources": resources, "pool": pool.name if pool else None, "purpose": purpose},
    )
    return allocation


def check(
    session: Session,
    actor: Actor,
    project_name: str,
    *,
    resources: dict[str, float],
    pool: str | None = None,
    expected_seconds: float | None = None,
) -> None:
    """Raise what `admit` would raise now, admitting nothing.

    For a request that must wait its turn anyway (behind its project's queue) but should hear
    at once when it is not allowed or can never fit.
    """
    project, _, request = _prepare(session, actor, project_name, resources, pool, expected_seconds)
    _decide(session, actor, project.id, request)


def _prepare(
    session: Session,
    actor: Actor,
    project_name: str,
    resources: dict[str, float],
    pool: str | None,
    expected_seconds: float | None,
) -> tuple[ProjectModel, PoolModel | None, engine.Request]:
    project = projects.get_for(session, actor, project_name, Role.MEMBER)
    check_resources(resources)
    pool_row = pools.check_usable(session, project.id, pool, project_name) if pool else None
    return project, pool_row, engine.Request(resources, expected_seconds)


def _decide(session: Session, actor: Actor, project_id: int, request: engine.Request) -> datetime:
    """Check the request against the quotas now; raise QuotaExceeded, or return that now."""
    limits = quotas.limits_for(session, project_id, actor.user.id)
    now = actor.now()
    usage = {}
    for scope, user_id in ((Scope.PROJECT, None), (Scope.USER, actor.user.id)):
        scoped = [lim for lim in limits if lim.scope is scope]
        if scoped:
            periods = {(lim.resource, lim.period) for lim in scoped if lim.period}
            usage[scope] = quotas.usage_of(session, project_id, user_id, now, periods)
    decision = engine.admit(request, usage, limits, user=actor.name)
    if not decision.admitted:
        session.rollback()
        raise QuotaExceeded(decision.reason, may_fit_later=decision.may_fit_later)
    return now


def _in_project(session: Session, project: ProjectModel, allocation_id: int) -> AllocationModel:
    allocation = session.get(AllocationModel, allocation_id)
    if allocation is None or allocation.project_id != project.id:
        raise NotFound(f"allocation {allocation_id} not found in project {project.name!r}")
    return allocation


def get(session: Session, actor: Actor, project_name: str, allocation_id: int) -> AllocationModel:
    return _in_project(session, projects.get_for(session, actor, project_name), allocation_id)


def list_for(
    session: Session, actor: Actor, project_name: str, *, state: str | None = None
) -> list[AllocationModel]:
    project = projects.get_for(session, actor, project_name)
    stmt = (
        select(AllocationModel)
        .where(AllocationModel.project_id == project.id)
        .order_by(AllocationModel.id.desc())
    )
    if state is not None:
        stmt = stmt.where(AllocationModel.state == state)
    return list(session.scalars(stmt))


def release(
    session: Session, actor: Actor, project_name: str, allocation_id: int
) -> AllocationModel:
    """End an allocation and meter what it used; members release their own, owners any."""
    project = projects.get_for(session, actor, project_name, Role.MEMBER)
    allocation = _in_project(session, project, allocation_id)
    projects.require_own_or_owner(session, actor, project, allocation.user_id, "allocation")
    _refuse_if_held(session, allocation)
    # Under the project's lock, so that two releases of one allocation meter it once and
    # every admission sees releases in the order of their timestamps.
    lock_project(session, project.id)
    meter(session, actor, project, allocation)
    session.commit()
    return allocation


def _refuse_if_held(session: Session, allocation: AllocationModel) -> None:
    """A job's or an endpoint's allocation ends with it: released alone, the quota would stop
    counting what still runs."""
    if allocation.state != "active":
        return
    job = session.scalar(select(JobModel.id).where(JobModel.allocation_id == allocation.id))
    if job is not None:
        raise Conflict(f"allocation {allocation.id} is held by job {job}; stop the job instead")
    endpoint = session.scalar(
        select(EndpointModel.name).where(EndpointModel.allocation_id == allocation.id)
    )
    if endpoint is not None:
        raise Conflict(
            f"allocation {allocation.id} is held by endpoint {endpoint!r}; scale or delete "
            "the endpoint instead"
        )


def meter(
    session: Session, actor: Actor, project: ProjectModel, allocation: AllocationModel
) -> None:
    """End an active allocation and write its usage, in the caller's transaction.

    The caller holds the project's lock (`lock_project`) and commits.
    """
    session.refresh(allocation)
    if allocation.state != "active":
        return
    now = actor.now()
    allocation.state = "released"
    allocation.released_at = now
    started = allocation.metered_from
    seconds = 0.0
    # None: a job that never started (stopped while it waited for the cluster) ran nothing.
    if started is not None:
        seconds = max((now - started).total_seconds(), 0.0)
        for resource, amount in allocation.resources.items():
            session.add(
                UsageModel(
                    project_id=project.id,
                    user_id=allocation.user_id,
                    allocation_id=allocation.id,
                    resource=resource,
                    amount=amount,
                    started_at=started,
                    ended_at=now,
                    resource_seconds=amount * seconds,
                )
            )
    audit.record(
        session,
        actor,
        "allocation.release",
        "allocation",
        str(allocation.id),
        project=project.name,
        detail={"seconds": round(seconds, 3)},
    )


def readmit(
    session: Session,
    actor: Actor,
    project_name: str,
    held: AllocationModel | None,
    *,
    resources: dict[str, float],
    purpose: str,
) -> AllocationModel:
    """Trade a held allocation for one of new size in one transaction.

    The quota sees the new size instead of the old, not beside it: an endpoint going from two
    replicas to three needs room for one more, not for five. A refusal keeps the old one.
    """
    project, _, request = _prepare(session, actor, project_name, resources, None, None)
    lock_project(session, project.id)
    if held is not None:
        meter(session, actor, project, held)
        session.flush()
    now = _decide(session, actor, project.id, request)
    return _grant(session, actor, project, resources, None, purpose, None, now)
