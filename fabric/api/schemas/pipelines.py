"""Request and response shapes of pipelines, their runs and task runs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from fabric.states import JobStatus, PipelineRunStatus, RunTrigger, TaskRunStatus


class PipelinePublic(BaseModel):
    name: str
    version: int = Field(description="counts up each time the pipeline is applied")
    description: str
    user: str = Field(description="who applied it last; scheduled runs act as this user")
    paused: bool = Field(description="whether its schedule is paused")
    spec: dict[str, Any] = Field(description="as applied, defaults left out")
    next_tick: datetime | None = Field(description="when the schedule runs next")
    created_at: datetime
    updated_at: datetime


class PipelineUpdate(BaseModel):
    paused: bool = Field(description="pause or resume the schedule")


class PipelineCopy(BaseModel):
    name: str = Field(description="the copy's name")


class PipelineRunCreate(BaseModel):
    logical_date: datetime | None = Field(
        default=None, description="what {{ ds }} and {{ ts }} say; default: now"
    )
    globals: dict[str, Any] = Field(
        default_factory=dict, description="values for some of the pipeline's globals"
    )
    only: str | None = Field(
        default=None,
        description="run this task alone (for debugging), with its upstream tasks' outputs "
        "from their newest success",
    )


class PipelineBackfill(BaseModel):
    start: datetime = Field(description="the first schedule tick to run, included")
    end: datetime = Field(description="the last, included")


class TaskRunPublic(BaseModel):
    task: str
    status: TaskRunStatus
    message: str
    job_id: int | None
    job_status: JobStatus | None = Field(description="its job's status (QUEUED while it waits)")
    logs: str | None = Field(description="where its job's logs are")
    params: dict[str, Any] | None = Field(description="its parameters, references resolved")
    outputs: dict[str, Any] | None = Field(description="its job's outputs.json")
    results: dict[str, Any] | None = Field(
        description="its outputs to show: metrics, tables (CSV previews), images, charts "
        "(ECharts options), each file with the address that serves it"
    )
    history: list[dict[str, Any]] = Field(description="each status with when it began")
    started_at: datetime | None
    ended_at: datetime | None


class PipelineRunPublic(BaseModel):
    id: int
    pipeline: str
    number: int = Field(description="the run's number within its pipeline")
    trigger: RunTrigger = Field(description="how the run was started")
    logical_date: datetime
    version: int = Field(description="the pipeline version it runs")
    variables: dict[str, Any] = Field(description="the globals it runs with")
    user: str
    status: PipelineRunStatus
    message: str
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    tasks: list[TaskRunPublic]
