"""What an endpoint runs, as a user writes it: versions and their traffic, scale, options.

The spec is stored as given (with aliases resolved to version numbers), and every change is
kept as a revision, so a rollback is the previous spec applied again.
"""

from __future__ import annotations

import re
from datetime import datetime, time
from enum import StrEnum
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

ENDPOINT_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$")
ENDPOINT_NAME_HELP = "lowercase letters, digits and '-', at most 40 characters"


# What the server's door decides alone: changing only these restarts no replica.
DOOR_ONLY = ("anonymous", "rate_limit")


def serve_part(stored: dict[str, Any]) -> dict[str, Any]:
    """A stored spec without what only the door reads: what Serve's application is built of."""
    return {name: value for name, value in stored.items() if name not in DOOR_ONLY}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VersionTraffic(_Strict):
    model: str = Field(description="a registered model of the project")
    version: int | None = Field(
        default=None, ge=1, description="its version; or name an alias; default the newest"
    )
    alias: str | None = Field(default=None, description="resolved to its version when applied")
    weight: float = Field(default=100, ge=0, description="share of traffic, relative to the others")

    @property
    def key(self) -> str:
        """The version's deployment name in the endpoint's Serve application."""
        return f"{self.model}-v{self.version}"


class Mirror(_Strict):
    model: str
    version: int | None = Field(default=None, ge=1)
    alias: str | None = None
    percent: float = Field(gt=0, le=100, description="share of requests copied to the shadow")

    @property
    def key(self) -> str:
        return f"{self.model}-v{self.version}"


class Autoscaling(_Strict):
    min_replicas: int = Field(default=1, ge=0)
    max_replicas: int = Field(ge=1)
    target_ongoing_requests: float = Field(default=2, gt=0)

    @model_validator(mode="after")
    def _bounds(self) -> Self:
        if self.min_replicas > self.max_replicas:
            raise ValueError("min_replicas must not exceed max_replicas")
        return self


class Batching(_Strict):
    max_batch_size: int = Field(ge=1, le=1024)
    batch_wait_timeout_s: float = Field(default=0.01, ge=0, le=10)


class HealthCheck(_Strict):
    period_s: float = Field(default=10, gt=0)
    timeout_s: float = Field(default=30, gt=0)


class ScaleWindow(_Strict):
    """More (or fewer) replicas at certain hours, e.g. 09:00-21:00 on weekdays (UTC)."""

    start: time = Field(description="HH:MM, UTC")
    end: time = Field(description="HH:MM, UTC; before start means the window spans midnight")
    weekdays: list[Annotated[int, Field(ge=0, le=6)]] | None = Field(
        default=None, description="0 is Monday; default every day"
    )
    replicas: int | None = Field(default=None, ge=0)
    min_replicas: int | None = Field(default=None, ge=0)
    max_replicas: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _sets_replicas(self) -> Self:
        if self.replicas is None and self.min_replicas is None and self.max_replicas is None:
            raise ValueError("a window sets replicas, or min_replicas/max_replicas")
        return self

    def active(self, now: datetime) -> bool:
        moment = now.time().replace(tzinfo=None)
        if self.weekdays is not None and now.weekday() not in self.weekdays:
            return False
        if self.start <= self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end


class EndpointKind(StrEnum):
    CLASSIC = "classic"
    LLM = "llm"


class EngineOptions(_Strict):
    """vLLM's engine options an `llm` endpoint may set; the rest are the engine's defaults."""

    max_model_len: int | None = Field(
        default=None, ge=16, description="longest prompt plus answer, in tokens"
    )
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    tensor_parallel_size: int = Field(default=1, ge=1, le=64)
    gpu_memory_utilization: float | None = Field(default=None, gt=0, le=1)
    enable_prefix_caching: bool | None = None
    max_num_seqs: int | None = Field(default=None, ge=1, le=4096)
    max_loras: int = Field(default=4, ge=1, le=64, description="adapters loaded at once")
    max_lora_rank: Literal[1, 8, 16, 32, 64, 128, 256, 320, 512] = Field(
        default=16, description="the largest adapter rank served (the ranks vLLM takes)"
    )


class RateLimit(_Strict):
    """What each key (or member's token) may ask of the endpoint per minute."""

    requests_per_minute: int | None = Field(default=None, ge=1)
    tokens_per_minute: int | None = Field(
        default=None, ge=1, description="prompt and completion tokens together (llm endpoints)"
    )


class EndpointSpec(_Strict):
    kind: EndpointKind = Field(
        default=EndpointKind.CLASSIC,
        description="classic (tables in, predictions out) or llm (vLLM, OpenAI's API)",
    )
    versions: list[VersionTraffic] = Field(min_length=1)
    mirror: Mirror | None = None
    replicas: int = Field(default=1, ge=1, le=100)
    autoscaling: Autoscaling | None = None
    cpu: float = Field(default=1, gt=0, description="CPUs per replica (fractions allowed)")
    gpu: float = Field(default=0, ge=0, description="GPUs per replica (fractions allowed)")
    memory_gib: float = Field(default=0, ge=0)
    max_ongoing_requests: int = Field(default=32, ge=1, le=10000)
    batching: Batching | None = None
    health_check: HealthCheck = Field(default_factory=HealthCheck)
    env: dict[str, str] = Field(default_factory=dict)
    schedule: list[ScaleWindow] = Field(default_factory=list)
    anonymous: bool = Field(default=False, description="anyone may call it, without a key")
    engine: EngineOptions | None = Field(default=None, description="llm endpoints only")
    rate_limit: RateLimit | None = None

    @field_validator("env")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                raise ValueError(f"{name!r} is not an environment variable name")
        return value

    @model_validator(mode="after")
    def _traffic(self) -> Self:
        if sum(v.weight for v in self.versions) <= 0:
            raise ValueError("versions: at least one version needs a weight above 0")
        return self

    @model_validator(mode="after")
    def _kind(self) -> Self:
        """An llm endpoint serves one base model (its adapters ride on it); vLLM batches and
        splits nothing by weight, so the classic options that do have no meaning there."""
        if self.kind is EndpointKind.CLASSIC:
            if self.engine is not None:
                raise ValueError("engine: only an llm endpoint (kind: llm) has engine options")
            return self
        if len(self.versions) != 1:
            raise ValueError("versions: an llm endpoint serves one base model version")
        for name in ("mirror", "batching"):
            if getattr(self, name) is not None:
                raise ValueError(f"{name}: an llm endpoint has none (vLLM batches on its own)")
        if self.engine is None:
            self.engine = EngineOptions()
        return self

    def replicas_at(self, now: datetime) -> tuple[int, int]:
        """The (least, most) replicas of each version at `now`, schedule windows applied."""
        low, high = (
            (self.autoscaling.min_replicas, self.autoscaling.max_replicas)
            if self.autoscaling
            else (self.replicas, self.replicas)
        )
        for window in self.schedule:
            if window.active(now):
                if window.replicas is not None:
                    low = high = window.replicas
                low = window.min_replicas if window.min_replicas is not None else low
                high = window.max_replicas if window.max_replicas is not None else high
        return low, max(low, high, 1)

    def peak_replicas(self) -> int:
        """The most replicas of a version the spec may ever run, whatever the hour."""
        sizes = [self.autoscaling.max_replicas if self.autoscaling else self.replicas]
        for window in self.schedule:
            sizes += [n for n in (window.replicas, window.min_replicas, window.max_replicas) if n]
        return max(sizes)

    def deployed(self) -> list[VersionTraffic | Mirror]:
        """Every version that needs replicas: those taking traffic and the mirror's shadow."""
        keys = {v.key for v in self.versions}
        shadow = [self.mirror] if self.mirror and self.mirror.key not in keys else []
        return [*self.versions, *shadow]

    def resources(self) -> dict[str, float]:
        """What the endpoint holds against the project's quota at its peak scale."""
        count = self.peak_replicas() * len(self.deployed())
        held = {"cpu": self.cpu * count, "gpu": self.gpu * count, "memory": self.memory_gib * count}
        return {name: round(amount, 6) for name, amount in held.items() if amount > 0}
