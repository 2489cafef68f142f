"""Request and response shapes of jobs, their results, code packages and the Ray dashboard."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from fabric.api.schemas.common import Public
from fabric.states import JobStatus


class JobCreate(BaseModel):
    entrypoint: str | None = Field(
        default=None, max_length=10000, description="the command, e.g. 'python train.py'"
    )
    template: str | None = Field(
        default=None, max_length=100, description="a template to run instead of a command"
    )
    params: dict[str, Any] | None = Field(
        default=None, description="the template's parameters, checked against its schema"
    )
    name: str | None = Field(default=None, max_length=100)
    runtime_env: dict[str, Any] = Field(
        default_factory=dict, description="Ray's runtime env: env_vars, pip, working_dir, ..."
    )
    resources: dict[str, float] | None = Field(
        default=None,
        description="the driver's cpu (cores), memory (GiB), gpu, npu, custom; default: the "
        "template's, or cpu: 1",
    )
    workers: int | None = Field(
        default=None,
        ge=0,
        le=256,
        description="Ray workers the job starts beside its driver (Train workers, Tune trials "
        "at once); default: the template's, or 0",
    )
    worker_resources: dict[str, float] | None = Field(
        default=None, description="what each worker holds; default: the template's, or cpu: 1"
    )
    pool: str | None = None
    timeout_seconds: float | None = Field(default=None, gt=0)
    max_retries: int = Field(default=0, ge=0, le=10)


class JobPublic(BaseModel):
    id: int
    name: str
    user: str
    status: JobStatus
    message: str
    queue_position: int | None
    entrypoint: str
    template: str | None
    params: dict[str, Any] | None
    resources: dict[str, float]
    workers: int
    worker_resources: dict[str, float]
    requested: dict[str, float] = Field(
        description="what the quota counts: the driver's resources and all its workers'"
    )
    pool: str | None
    timeout_seconds: float | None
    max_retries: int
    attempt: int
    submission_id: str | None
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    retry_at: datetime | None = Field(description="when a failed attempt's retry may start")


class JobResultsPublic(BaseModel):
    outputs: dict[str, Any] = Field(description="the job's outputs.json: model_uri, metrics, ...")
    metrics: list[dict[str, Any]] = Field(
        description="each report_metrics call in order, with its time and step"
    )


class PackagePublic(Public):
    name: str
    size_bytes: int


class DashboardLink(BaseModel):
    url: str = Field(description="opens the dashboard once, logged in; relative to the server")
    expires_in_seconds: int
