"""Quota limits per project and per user in a project, and what each has used of them."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from fabric import names
from fabric.db.models import AllocationModel, QuotaModel, UsageModel
from fabric.errors import InvalidSpec, NotFound
from fabric.quota.engine import Kind, Limit, Period, Scope, Usage, period_start
from fabric.services.tenancy import audit, projects, users
from fabric.services.tenancy.access import require_admin
from fabric.services.tenancy.actor import Actor
from fabric.services.tenancy.roles import Role


def _parse(kind: str, period: str | None) -> tuple[Kind, Period | None]:
    try:
        parsed_kind = Kind(kind)
    except ValueError:
        raise InvalidSpec(f"kind must be one of {', '.join(Kind)}") from None
    if parsed_kind is Kind.TOTAL:
        if period not in tuple(Period):
            raise InvalidSpec(f"a total quota needs a period: one of {', '.join(Period)}")
        return parsed_kind, Period(period)
    if period is not None:
        raise InvalidSpec(f"period applies only to total quotas, not {kind}")
    return parsed_kind, None


def _target(
    session: Session, actor: Actor, project_name: str, username: str | None
) -> tuple[int, int | None]:
    """Project-wide limits are the admin's to set; limits for a user inside it, the owners'."""
    project = projects.get_for(session, actor, project_name, Role.OWNER)
    if username is None:
        require_admin(actor, "set a project's own quota")
        return project.id, None
    user = users.get(session, username)
    if projects.role_of(session, project, user.id) is None:
        raise InvalidSpec(f"{username!r} is not a member of {project_name!r}")
    return project.id, user.id


def _find(
    session: Session, project_id: int, user_id: int | None, resource: str, kind: str
) -> QuotaModel | None:
    user_match = QuotaModel.user_id.is_(None) if user_id is None else QuotaModel.user_id == user_id
    return session.scalar(
        select(QuotaModel).where(
            QuotaModel.project_id == project_id,
            user_match,
            QuotaModel.resource == resource,
            QuotaModel.kind == kind,
        )
    )


def set_limit(
    session: Session,
    actor: Actor,
    project_name: str,
    *,
    resource: str,
    kind: str,
    limit: float,
    period: str | None = None,
    username: str | None = None,
) -> QuotaModel:
    names.check(names.RESOURCE_NAME, resource, "resource name", names.RESOURCE_NAME_HELP)
    parsed_kind, parsed_period = _parse(kind, period)
    if limit < 0:
        raise InvalidSpec("limit must be zero or more")
    project_id, user_id = _target(session, actor, project_name, username)
    quota = _find(session, project_id, user_id, resource, parsed_kind)
    if quota is None:
        quota = QuotaModel(project_id=project_id, user_id=user_id, resource=resource, kind=kind)
        session.add(quota)
    quota.limit = limit
    quota.period = parsed_period
    detail = {
        "resource": resource,
        "kind": kind,
        "limit": limit,
        "period": period,
        "user": username,
    }
    audit.record(
        session, actor, "quota.set", "quota", resource, project=project_name, detail=detail
    )
    session.commit()
    return quota


def remove_limit(
    session: Session,
    actor: Actor,
    project_name: str,
    *,
    resource: str,
    kind: str,
    username: str | None = None,
) -> None:
    project_id, user_id = _target(session, actor, project_name, username)
    quota = _find(session, project_id, user_id, resource, kind)
    if quota is None:
        raise NotFound(f"no {kind} quota on {resource} to remove")
    session.delete(quota)
    detail = {"resource": resource, "kind": kind, "user": username}
    audit.record(
        session, actor, "quota.remove", "quota", resource, project=project_name, detail=detail
    )
    session.commit()


def limits_for(session: Session, project_id: int, user_id: int) -> list[Limit]:
    """The project's own limits and those of one user in it, as the engine reads them."""
    stmt = select(QuotaModel).where(
        QuotaModel.project_id == project_id,
        or_(QuotaModel.user_id.is_(None), QuotaModel.user_id == user_id),
    )
    return [_limit(q) for q in session.scalars(stmt)]


def _limit(quota: QuotaModel) -> Limit:
    scope = Scope.PROJECT if quota.user_id is None else Scope.USER
    period = Period(quota.period) if quota.period else None
    return Limit(scope, quota.resource, Kind(quota.kind), quota.limit, period)


def usage_of(
    session: Session,
    project_id: int,
    user_id: int | None,
    now: datetime,
    periods: set[tuple[str, Period]],
) -> Usage:
    """What a project (or one user in it) holds now, and has consumed in each given period."""
    active = select(AllocationModel.resources, AllocationModel.metered_from).where(
        AllocationModel.project_id == project_id, AllocationModel.state == "active"
    )
    if user_id is not None:
        active = active.where(AllocationModel.user_id == user_id)
    allocations = session.execute(active).all()
    running: dict[str, float] = defaultdict(float)
    for held, _ in allocations:
        for resource, amount in held.items():
            running[resource] += amount
    consumed: dict[tuple[str, Period], float] = {}
    for resource, period in periods:
        start = period_start(period, now)
        ended = select(UsageModel.amount, UsageModel.started_at, UsageModel.ended_at).where(
            UsageModel.project_id == project_id,
            UsageModel.resource == resource,
            UsageModel.ended_at > start,
        )
        if user_id is not None:
            ended = ended.where(UsageModel.user_id == user_id)
        total = sum(
            amount * (ended_at - max(started_at, start)).total_seconds()
            for amount, started_at, ended_at in session.execute(ended)
        )
        total += sum(
            held.get(resource, 0.0) * max((now - max(metered_from, start)).total_seconds(), 0)
            for held, metered_from in allocations
            if metered_from is not None
        )
        consumed[(resource, period)] = total
    return Usage(running=dict(running), consumed=consumed)


@dataclass(frozen=True)
class QuotaStatus:
    quota: QuotaModel
    used: float


def show(session: Session, actor: Actor, project_name: str) -> list[QuotaStatus]:
    """Every limit of the project with what is used of it now (held, or consumed this period)."""
    project = projects.get_for(session, actor, project_name)
    quotas = list(
        session.scalars(
            select(QuotaModel)
            .where(QuotaModel.project_id == project.id)
            .order_by(QuotaModel.user_id.is_not(None), QuotaModel.resource, QuotaModel.kind)
        )
    )
    now = actor.now()
    cache: dict[int | None, Usage] = {}
    result = []
    for quota in quotas:
        if quota.user_id not in cache:
            periods = {
                (q.resource, Period(q.period))
                for q in quotas
                if q.user_id == quota.user_id and q.period
            }
            cache[quota.user_id] = usage_of(session, project.id, quota.user_id, now, periods)
        usage = cache[quota.user_id]
        if quota.kind == Kind.TOTAL:
            used = usage.consumed.get((quota.resource, Period(quota.period)), 0.0)
        elif quota.kind == Kind.CONCURRENT:
            used = usage.running.get(quota.resource, 0.0)
        else:
            used = 0.0
        result.append(QuotaStatus(quota, used))
    return result
