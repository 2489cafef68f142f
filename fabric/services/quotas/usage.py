"""Usage reports: metered resource-seconds of a project, grouped, with a cost at set rates."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from fabric.config import Settings
from fabric.db.models import UsageModel, UserModel
from fabric.errors import InvalidSpec
from fabric.services.tenancy import projects
from fabric.services.tenancy.actor import Actor

GROUPS = ("user", "resource")


@dataclass(frozen=True)
class UsageLine:
    user: str | None
    resource: str
    resource_seconds: float
    cost: float | None


def report(
    session: Session,
    settings: Settings,
    actor: Actor,
    project_name: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    group_by: str = "user",
) -> list[UsageLine]:
    """Consumption that ended in [since, until), per user and resource (or per resource)."""
    if group_by not in GROUPS:
        raise InvalidSpec(f"group_by must be one of {', '.join(GROUPS)}")
    project = projects.get_for(session, actor, project_name)
    stmt = (
        select(UserModel.username, UsageModel.resource, UsageModel.resource_seconds)
        .join(UserModel, UserModel.id == UsageModel.user_id)
        .where(UsageModel.project_id == project.id)
    )
    if since is not None:
        stmt = stmt.where(UsageModel.ended_at >= since)
    if until is not None:
        stmt = stmt.where(UsageModel.ended_at < until)
    totals: dict[tuple[str | None, str], float] = defaultdict(float)
    for username, resource, seconds in session.execute(stmt):
        totals[(username if group_by == "user" else None, resource)] += seconds
    return [
        UsageLine(user, resource, seconds, _cost(settings, resource, seconds))
        for (user, resource), seconds in sorted(totals.items(), key=lambda item: str(item[0]))
    ]


def _cost(settings: Settings, resource: str, seconds: float) -> float | None:
    rate = settings.rates.get(resource)
    return None if rate is None else round(rate * seconds / 3600, 6)
