"""The quota engine: pure and I/O-free, so every rule is tested without a database.

Three kinds of limit, as in the platforms Fabric replaces:
- `single`: what one request may ask for;
- `concurrent`: the sum of what is held at once;
- `total`: resource-seconds consumed in a period (hour, day, week, month).
Each applies to a whole project or to one user inside it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum


class Kind(StrEnum):
    SINGLE = "single"
    CONCURRENT = "concurrent"
    TOTAL = "total"


class Period(StrEnum):
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


class Scope(StrEnum):
    PROJECT = "project"
    USER = "user"


@dataclass(frozen=True)
class Limit:
    scope: Scope
    resource: str
    kind: Kind
    value: float
    period: Period | None = None


@dataclass(frozen=True)
class Request:
    resources: Mapping[str, float]
    # How long the work expects to run; counted against `total` limits when known.
    expected_seconds: float | None = None


@dataclass(frozen=True)
class Usage:
    """What one scope (the project, or the user in it) holds and has consumed."""

    running: Mapping[str, float] = field(default_factory=dict)
    consumed: Mapping[tuple[str, Period], float] = field(default_factory=dict)


@dataclass(frozen=True)
class Violation:
    limit: Limit
    message: str
    # Concurrent and total limits free up with time, unless the request alone exceeds them;
    # a single limit never does. A request that never fits must not wait in a queue, where
    # it would hold back every request behind it.
    may_fit_later: bool


@dataclass(frozen=True)
class Decision:
    violations: tuple[Violation, ...] = ()

    @property
    def admitted(self) -> bool:
        return not self.violations

    @property
    def may_fit_later(self) -> bool:
        return all(v.may_fit_later for v in self.violations)

    @property
    def reason(self) -> str:
        return "; ".join(v.message for v in self.violations)


def _fmt(value: float) -> str:
    return f"{value:g}"


def _check(limit: Limit, request: Request, usage: Usage, who: str) -> Violation | None:
    asked = request.resources.get(limit.resource, 0.0)
    if asked <= 0:
        return None
    name = f"{who} {limit.kind} quota on {limit.resource} is {_fmt(limit.value)}"
    if limit.kind is Kind.SINGLE:
        if asked > limit.value:
            return Violation(
                limit, f"{name} per request; {_fmt(asked)} requested", may_fit_later=False
            )
        return None
    if limit.kind is Kind.CONCURRENT:
        held = usage.running.get(limit.resource, 0.0)
        if held + asked > limit.value:
            return Violation(
                limit,
                f"{name}; {_fmt(held)} in use + {_fmt(asked)} requested exceeds it",
                may_fit_later=asked <= limit.value,
            )
        return None
    assert limit.period is not None
    used = usage.consumed.get((limit.resource, limit.period), 0.0)
    expected = asked * (request.expected_seconds or 0.0)
    if used >= limit.value or used + expected > limit.value:
        return Violation(
            limit,
            f"{name} resource-seconds per {limit.period}; {_fmt(used)} used"
            + (f" + {_fmt(expected)} expected" if expected else "")
            + " leaves no room",
            may_fit_later=expected <= limit.value,
        )
    return None


def admit(
    request: Request, usage: Mapping[Scope, Usage], limits: Iterable[Limit], *, user: str
) -> Decision:
    """Check a request against every limit; the decision lists each limit it would break."""
    violations = []
    for limit in limits:
        who = "project" if limit.scope is Scope.PROJECT else f"user {user}'s"
        violation = _check(limit, request, usage.get(limit.scope, Usage()), who)
        if violation:
            violations.append(violation)
    return Decision(tuple(violations))


def period_start(period: Period, now: datetime) -> datetime:
    """Start of the calendar period (UTC) that `now` falls in; `total` limits reset there."""
    hour = now.replace(minute=0, second=0, microsecond=0)
    if period is Period.HOUR:
        return hour
    day = hour.replace(hour=0)
    if period is Period.DAY:
        return day
    if period is Period.WEEK:
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)
