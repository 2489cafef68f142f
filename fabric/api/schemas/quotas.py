"""Request and response shapes of quotas, allocations and usage."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from fabric.quota.engine import Kind, Period


class QuotaSet(BaseModel):
    resource: str = Field(description="cpu (cores), memory (GiB), gpu, npu, or a custom name")
    kind: Kind
    limit: float = Field(ge=0)
    period: Period | None = Field(default=None, description="for total quotas only")
    user: str | None = Field(default=None, description="a member; none for the whole project")


class QuotaPublic(BaseModel):
    resource: str
    kind: Kind
    limit: float
    period: Period | None
    user: str | None
    used: float = Field(description="held now (concurrent) or consumed this period (total)")


class AllocationCreate(BaseModel):
    resources: dict[str, float] = Field(description='e.g. {"cpu": 2, "gpu": 0.5}')
    pool: str | None = None
    purpose: str = Field(default="", max_length=200)
    expected_seconds: float | None = Field(default=None, gt=0)


class AllocationPublic(BaseModel):
    id: int
    user: str
    pool: str | None
    purpose: str
    resources: dict[str, float]
    state: str
    created_at: datetime
    released_at: datetime | None


class UsagePublic(BaseModel):
    user: str | None
    resource: str
    resource_seconds: float
    cost: float | None = Field(
        description="at FABRIC_RATES per resource-hour, or per 1,000 tokens; none if unset"
    )
    endpoint: str | None = Field(default=None, description="grouped by endpoint or key")
    key: str | None = Field(default=None, description="the key's name ('-': none), by key")
    tokens: int | None = Field(
        default=None, description="for prompt_tokens and completion_tokens of llm endpoints"
    )
