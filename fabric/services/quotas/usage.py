"""Usage reports: metered resource-seconds of a project, and the tokens its llm endpoints
answered, grouped, with a cost at set rates (per hour of a resource, per 1,000 tokens)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from fabric.config import Settings
from fabric.db.models import UsageModel, UserModel
from fabric.errors import InvalidSpec
from fabric.services.serving import token_usage
from fabric.services.tenancy import projects
from fabric.services.tenancy.actor import Actor

GROUPS = ("user", "resource", "endpoint", "key")
# What a rate is for: an hour of a resource, a thousand tokens.
SECONDS_PER_RATE = 3600
TOKENS_PER_RATE = 1000
# Grouped by these, the report holds tokens alone: resources are metered per allocation.
TOKEN_GROUPS = ("endpoint", "key")


@dataclass(frozen=True)
class UsageLine:
    user: str | None
    resource: str
    resource_seconds: float
    cost: float | None
    endpoint: str | None = None
    key: str | None = None
    # For `prompt_tokens` and `completion_tokens`, which have no resource-seconds.
    tokens: int | None = None


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
    """Consumption that ended in [since, until), per user and resource (or per resource),
    then tokens; per endpoint (or endpoint and key), tokens alone."""
    if group_by not in GROUPS:
        raise InvalidSpec(f"group_by must be one of {', '.join(GROUPS)}")
    project = projects.get_for(session, actor, project_name)
    found = token_usage.lines(session, project, since=since, until=until, group_by=group_by)
    tokens = [
        UsageLine(
            line.user,
            line.kind,
            0.0,
            _cost(settings, line.kind, line.tokens, TOKENS_PER_RATE),
            line.endpoint,
            line.key,
            line.tokens,
        )
        for line in found
    ]
    if group_by in TOKEN_GROUPS:
        return tokens
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
        *(
            UsageLine(user, resource, seconds, _cost(settings, resource, seconds, SECONDS_PER_RATE))
            for (user, resource), seconds in sorted(totals.items(), key=lambda item: str(item[0]))
        ),
        *tokens,
    ]


def _cost(settings: Settings, name: str, amount: float, per: float) -> float | None:
    """`amount` of `name` at its rate, which `FABRIC_RATES` gives per `per` of it."""
    rate = settings.rates.get(name)
    return None if rate is None else round(rate * amount / per, 6)
