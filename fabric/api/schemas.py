"""Request and response shapes of the REST API (`XCreate`, `XUpdate`, `XPublic`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from fabric.quota.engine import Kind, Period
from fabric.services.tenancy.roles import Role


class Public(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class LoginRequest(BaseModel):
    username: str = Field(max_length=255)
    password: str = Field(max_length=1024)


class LoginResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_at: datetime


class UserCreate(BaseModel):
    username: str
    password: str | None = Field(
        default=None, max_length=1024, description="None for users who sign in through SSO only"
    )
    email: str | None = Field(default=None, max_length=254)
    is_admin: bool = False


class UserUpdate(BaseModel):
    email: str | None = Field(default=None, max_length=254)
    is_admin: bool | None = None
    disabled: bool | None = None
    password: str | None = Field(default=None, max_length=1024)


class PasswordChange(BaseModel):
    current_password: str = Field(max_length=1024)
    new_password: str = Field(max_length=1024)


class UserPublic(Public):
    username: str
    email: str | None
    is_admin: bool
    disabled: bool
    created_at: datetime


class TokenCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    expires_in_days: int | None = Field(default=None, description="default 90; at most the max")


class TokenPublic(Public):
    id: int
    name: str
    prefix: str
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class TokenCreated(TokenPublic):
    token: str = Field(description="the secret; shown only this once")


class ProjectCreate(BaseModel):
    name: str
    description: str = Field(default="", max_length=1000)


class ProjectUpdate(BaseModel):
    description: str = Field(max_length=1000)


class ProjectPublic(Public):
    name: str
    description: str
    created_at: datetime
    role: Role | None = Field(default=None, description="the caller's role; none for admins")


class MemberSet(BaseModel):
    role: Role


class MemberPublic(BaseModel):
    username: str
    role: Role
    created_at: datetime


class PoolCreate(BaseModel):
    name: str
    description: str = Field(default="", max_length=1000)
    resources: dict[str, float] = Field(default_factory=dict, description="per node, e.g. gpu: 8")
    node_selector: dict[str, str] = Field(default_factory=dict)


class PoolPublic(Public):
    name: str
    description: str
    resources: dict[str, float]
    node_selector: dict[str, str]


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


class AuditEventPublic(Public):
    id: int
    at: datetime
    actor: str
    client: str
    action: str
    object_type: str
    object_name: str
    project: str | None
    detail: dict[str, Any]


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
    status: str
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


class TemplatePublic(BaseModel):
    name: str = Field(description="a built-in's name, or PROJECT/NAME for a project's own")
    group: str
    description: str
    module: str | None = Field(
        default=None, description="a built-in runs as `python -m MODULE --param value ...`"
    )
    command: str | None = Field(
        default=None, description="a custom template runs `COMMAND --param value ...`"
    )
    project: str | None = Field(default=None, description="the project that registered it")
    version: int | None = Field(default=None, description="a custom template's version")
    published: bool = Field(default=False, description="whether every project may use it")
    parameters: dict[str, Any] = Field(description="JSON Schema of the parameters")
    resources: dict[str, float] = Field(description="what a job asks for when it names none")
    workers: int = Field(description="Ray workers beside the driver when a job names none")
    worker_resources: dict[str, float] = Field(description="what each worker holds")
    outputs: dict[str, str] = Field(description="names written to the run's outputs.json")


class CustomTemplateCreate(BaseModel):
    name: str = Field(description="lowercase letters, digits and '-'; versions count up")
    command: str = Field(
        max_length=10000,
        description="what a job runs, with each parameter appended as --name value, "
        "e.g. 'python train.py'",
    )
    parameters: dict[str, Any] = Field(
        default_factory=lambda: {"type": "object", "properties": {}},
        description="JSON Schema (an object) the parameters must fit; defaults are filled in",
    )
    description: str = Field(default="", max_length=2000)
    group: str = Field(default="custom", max_length=63)
    resources: dict[str, float] | None = Field(default=None, description="default: cpu 1")
    workers: int = Field(default=0, ge=0, le=256)
    worker_resources: dict[str, float] | None = None
    runtime_env: dict[str, Any] = Field(
        default_factory=dict,
        description="the code (working_dir: a package of the project), pip, env_vars",
    )
    published: bool = Field(default=False, description="let every project use it (owners)")


class CustomTemplateUpdate(BaseModel):
    published: bool


class UsagePublic(BaseModel):
    user: str | None
    resource: str
    resource_seconds: float
    cost: float | None = Field(description="at FABRIC_RATES per resource-hour; none if unset")


class PackagePublic(Public):
    name: str
    size_bytes: int


class DashboardLink(BaseModel):
    url: str = Field(description="opens the dashboard once, logged in; relative to the server")
    expires_in_seconds: int


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
    status: str = Field(description="WAITING, RUNNING, SUCCEEDED, FAILED, SKIPPED, ...")
    message: str
    job_id: int | None
    job_status: str | None = Field(description="its job's status (QUEUED while it waits)")
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
    trigger: str = Field(description="manual, schedule or backfill")
    logical_date: datetime
    version: int = Field(description="the pipeline version it runs")
    variables: dict[str, Any] = Field(description="the globals it runs with")
    user: str
    status: str
    message: str
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    tasks: list[TaskRunPublic]


class ModelVersionCreate(BaseModel):
    source: str = Field(
        description="the model: a job id, a run folder, or a model file or folder, in the "
        "project's storage or yours (relative paths are the project's)"
    )
    framework: str | None = Field(
        default=None, description="how it was saved; by default what its run recorded"
    )
    entry: str | None = Field(
        default=None, max_length=200, description="a custom model's 'module:Class'"
    )
    description: str = Field(default="", max_length=2000)
    tags: dict[str, str] = Field(default_factory=dict)


class ModelVersionPublic(BaseModel):
    model: str
    version: int
    framework: str
    uri: str
    entry: str | None
    sha256: str
    signature: dict[str, Any]
    metrics: dict[str, Any]
    params: dict[str, Any] | None
    tags: dict[str, str]
    description: str
    aliases: list[str]
    lineage: dict[str, Any] = Field(
        description="where it came from: source path, job, pipeline run, dataset"
    )
    user: str | None
    created_at: datetime


class RegisteredModelPublic(BaseModel):
    name: str
    description: str
    latest_version: int | None
    aliases: dict[str, int]
    versions: list[ModelVersionPublic]
    created_at: datetime


class AliasSet(BaseModel):
    version: int = Field(ge=1)


class EndpointPublic(BaseModel):
    name: str
    url: str = Field(description="where to call it: POST URL/predict")
    revision: int
    healthy_revision: int | None = Field(description="the newest revision Serve ran")
    status: str = Field(
        description="Serve's state: DEPLOYING, RUNNING, DEPLOY_FAILED, UNHEALTHY; PENDING "
        "when Serve has not taken the spec yet"
    )
    message: str
    spec: dict[str, Any]
    resources: dict[str, float] = Field(description="held against the project's quota")
    deployments: dict[str, Any] = Field(description="each version's deployment as Serve has it")
    metrics: dict[str, Any] = Field(description="calls through this server since it started")
    user: str
    created_at: datetime
    updated_at: datetime


class EndpointTraffic(BaseModel):
    weights: dict[str, float] = Field(
        description='weight per version, as "MODEL@VERSION" or "VERSION": {"3": 80, "4": 20}'
    )


class EndpointPromote(BaseModel):
    version: str | None = Field(
        default=None, description="MODEL@VERSION or VERSION; default the newest served"
    )


class EndpointRollback(BaseModel):
    revision: int | None = Field(default=None, description="default the one before")


class EndpointRevisionPublic(BaseModel):
    revision: int
    action: str
    message: str
    spec: dict[str, Any]
    user: str | None
    created_at: datetime


class EndpointKeyCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100)


class EndpointKeyPublic(BaseModel):
    id: int
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


class EndpointKeyCreated(EndpointKeyPublic):
    key: str = Field(description="shown once: send it as 'Authorization: Bearer KEY'")
