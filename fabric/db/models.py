"""The tables of the control plane, named after the domain (ProjectModel, QuotaModel, ...)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from fabric.db.types import UTCDateTime, state
from fabric.runtime.messages import MESSAGE_LIMIT
from fabric.states import AlertStatus, JobStatus, PipelineRunStatus, RunTrigger, TaskRunStatus

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class UserModel(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(63), unique=True)
    email: Mapped[str | None] = mapped_column(String(254))
    # None for users who only sign in through SSO.
    password_hash: Mapped[str | None] = mapped_column(String(255))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class TokenModel(Base):
    """Login sessions and personal API tokens; only a SHA-256 of the secret is kept."""

    __tablename__ = "tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    user: Mapped[UserModel] = relationship(lazy="joined")


class LoginAttemptModel(Base):
    """Failed logins, kept in the database so that limits hold across restarts and servers."""

    __tablename__ = "login_attempts"
    __table_args__ = (
        Index("ix_login_attempts_username_at", "username", "at"),
        Index("ix_login_attempts_client_at", "client", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(255))
    client: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class ProjectModel(Base):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    description: Mapped[str] = mapped_column(String(1000), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Bumped by every admission: the UPDATE takes the row's write lock, which serialises
    # admissions of one project on PostgreSQL and SQLite alike.
    admission_seq: Mapped[int] = mapped_column(Integer, default=0)

    memberships: Mapped[list[MembershipModel]] = relationship(
        back_populates="project", cascade="all, delete-orphan", passive_deletes=True
    )


class MembershipModel(Base):
    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("project_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    project: Mapped[ProjectModel] = relationship(back_populates="memberships")
    user: Mapped[UserModel] = relationship(lazy="joined")


class PoolModel(Base):
    """A named group of compute (e.g. `gpu-a100`, `npu-910b`, `edge-sh`) that projects may use."""

    __tablename__ = "pools"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    description: Mapped[str] = mapped_column(String(1000), default="")
    # What a node of the pool offers (e.g. {"cpu": 32, "gpu": 8}) and how to place work there.
    resources: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    node_selector: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ProjectPoolModel(Base):
    __tablename__ = "project_pools"

    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    pool_id: Mapped[int] = mapped_column(
        ForeignKey("pools.id", ondelete="CASCADE"), primary_key=True
    )

    pool: Mapped[PoolModel] = relationship(lazy="joined")


class QuotaModel(Base):
    """A limit on one resource for a project, or for one user inside it (user_id set)."""

    __tablename__ = "quotas"
    __table_args__ = (Index("ix_quotas_project_user", "project_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    resource: Mapped[str] = mapped_column(String(63))
    kind: Mapped[str] = mapped_column(String(16))
    limit: Mapped[float] = mapped_column(Float)
    period: Mapped[str | None] = mapped_column(String(16))

    user: Mapped[UserModel | None] = relationship(lazy="joined")


class AllocationModel(Base):
    """Resources admitted against quota and held until released (by a job, a service, a user)."""

    __tablename__ = "allocations"
    __table_args__ = (Index("ix_allocations_project_state", "project_id", "state"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    pool_id: Mapped[int | None] = mapped_column(ForeignKey("pools.id", ondelete="SET NULL"))
    purpose: Mapped[str] = mapped_column(String(200), default="")
    resources: Mapped[dict[str, float]] = mapped_column(JSON)
    expected_seconds: Mapped[float | None] = mapped_column(Float)
    state: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Where metering starts: at admission, but a job's when Ray starts running it (None until
    # then), so that a job that waits on a busy cluster is not billed for the wait.
    metered_from: Mapped[datetime | None] = mapped_column(UTCDateTime())
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    user: Mapped[UserModel] = relationship(lazy="joined")
    pool: Mapped[PoolModel | None] = relationship(lazy="joined")


class UsageModel(Base):
    """Metered consumption: one row per resource of a finished allocation."""

    __tablename__ = "usage"
    __table_args__ = (Index("ix_usage_project_ended", "project_id", "ended_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    allocation_id: Mapped[int] = mapped_column(
        ForeignKey("allocations.id", ondelete="CASCADE"), index=True
    )
    resource: Mapped[str] = mapped_column(String(63))
    amount: Mapped[float] = mapped_column(Float)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime] = mapped_column(UTCDateTime())
    resource_seconds: Mapped[float] = mapped_column(Float)


class TokenUsageModel(Base):
    """Tokens of one call of an llm endpoint: who called (key, user), and what it cost.
    Endpoint and key are named, not referenced: usage outlives them."""

    __tablename__ = "token_usage"
    __table_args__ = (Index("ix_token_usage_project_at", "project_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    endpoint: Mapped[str] = mapped_column(String(63))
    model: Mapped[str] = mapped_column(String(200))
    key_id: Mapped[int | None] = mapped_column(Integer)
    key_name: Mapped[str | None] = mapped_column(String(100))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    prompt_tokens: Mapped[int] = mapped_column(Integer)
    completion_tokens: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class AuditEventModel(Base):
    """Who did what, when, from where. Names are copied, not referenced, so history outlives
    the objects it speaks of."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_project_at", "project", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    actor: Mapped[str] = mapped_column(String(63))
    client: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(63))
    object_type: Mapped[str] = mapped_column(String(32))
    object_name: Mapped[str] = mapped_column(String(255))
    project: Mapped[str | None] = mapped_column(String(63))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class JobModel(Base):
    """A job of a project: admitted against quota, run on Ray, followed to its end."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_project_status", "project_id", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    entrypoint: Mapped[str] = mapped_column(String(10000))
    # The template the entrypoint was built from, and its validated parameters; None for
    # a job given as a plain command.
    template: Mapped[str | None] = mapped_column(String(100))
    params: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    runtime_env: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # The driver's own resources; the Ray workers it starts (Train, Tune) each hold
    # `worker_resources`. The quota counts them all.
    resources: Mapped[dict[str, float]] = mapped_column(JSON)
    workers: Mapped[int] = mapped_column(Integer, default=0)
    worker_resources: Mapped[dict[str, float]] = mapped_column(JSON, default=dict)
    pool: Mapped[str | None] = mapped_column(String(63))
    timeout_seconds: Mapped[float | None] = mapped_column(Float)
    max_retries: Mapped[int] = mapped_column(Integer, default=0)
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[JobStatus] = mapped_column(state(JobStatus))
    message: Mapped[str] = mapped_column(String(MESSAGE_LIMIT), default="")
    # "ray-job": a Ray Job of its own; "warm": a task of the warm runner (fabric/backends/warm.py).
    runner: Mapped[str] = mapped_column(String(16), default="ray-job")
    # Ray's id of the current attempt; None while queued, and between a failed attempt and
    # its retry.
    submission_id: Mapped[str | None] = mapped_column(String(100), unique=True)
    allocation_id: Mapped[int | None] = mapped_column(
        ForeignKey("allocations.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # When the reconciler may (re)submit an admitted job that has no submission: the next
    # attempt after a failure's backoff. None for a job that its request is submitting.
    retry_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    user: Mapped[UserModel] = relationship(lazy="joined")
    project: Mapped[ProjectModel] = relationship(lazy="joined")


class LeaseModel(Base):
    """A named lease that one server holds at a time (e.g. `reconciler`), renewed while it
    works and taken over by another once it expires."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    # A random id per holder: two servers on one host, or one restarted, never share it.
    holder: Mapped[str] = mapped_column(String(32))
    # Host and process of the holder, for humans reading the table.
    holder_name: Mapped[str] = mapped_column(String(255))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class CustomTemplateModel(Base):
    """One version of a template a project registered: a command its jobs run with the
    parameters appended as flags. Versions never change once registered; a published one
    may be run by every project."""

    __tablename__ = "custom_templates"
    __table_args__ = (UniqueConstraint("project_id", "name", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(63))
    version: Mapped[int] = mapped_column(Integer)
    group: Mapped[str] = mapped_column(String(63))
    description: Mapped[str] = mapped_column(String(2000), default="")
    command: Mapped[str] = mapped_column(String(10000))
    # JSON Schema of the parameters (an object schema); requests are checked against it.
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON)
    resources: Mapped[dict[str, float]] = mapped_column(JSON)
    workers: Mapped[int] = mapped_column(Integer, default=0)
    worker_resources: Mapped[dict[str, float]] = mapped_column(JSON, default=dict)
    # Its code sources name packages kept with this version (see custom_templates).
    runtime_env: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    published: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    project: Mapped[ProjectModel] = relationship(lazy="joined")
    user: Mapped[UserModel] = relationship(lazy="joined")


class PipelineModel(Base):
    """A project's pipeline: a DAG of template tasks (its spec, as applied) and its schedule's
    state. Applying it again replaces the spec and bumps the version; runs keep their copy."""

    __tablename__ = "pipelines"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    # Who applied it last: scheduled runs act as this user.
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(63))
    version: Mapped[int] = mapped_column(Integer)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    # The newest schedule tick that has a run; the scheduler goes on from there.
    last_tick: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    project: Mapped[ProjectModel] = relationship(lazy="joined")
    user: Mapped[UserModel] = relationship(lazy="joined")


class PipelineRunModel(Base):
    """One run of a pipeline for a logical date, with its own copy of the spec."""

    __tablename__ = "pipeline_runs"
    # A schedule tick or backfill date runs once: `tick` is set for those, empty for others.
    __table_args__ = (UniqueConstraint("pipeline_id", "tick"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    pipeline_id: Mapped[int] = mapped_column(
        ForeignKey("pipelines.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    trigger: Mapped[RunTrigger] = mapped_column(state(RunTrigger))
    logical_date: Mapped[datetime] = mapped_column(UTCDateTime())
    tick: Mapped[datetime | None] = mapped_column(UTCDateTime())
    version: Mapped[int] = mapped_column(Integer)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    # The pipeline's globals with this run's overrides.
    variables: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[PipelineRunStatus] = mapped_column(state(PipelineRunStatus), index=True)
    message: Mapped[str] = mapped_column(String(MESSAGE_LIMIT), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The webhook call its end owes (see pipeline_alerts): success, failure or timeout; how
    # it went (pending, sent, failed), and when to try next.
    alert_event: Mapped[str | None] = mapped_column(String(16))
    alert_status: Mapped[AlertStatus | None] = mapped_column(state(AlertStatus), index=True)
    alert_attempts: Mapped[int] = mapped_column(Integer, default=0)
    alert_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    alert_message: Mapped[str] = mapped_column(String(MESSAGE_LIMIT), default="")

    pipeline: Mapped[PipelineModel] = relationship(lazy="joined")
    user: Mapped[UserModel] = relationship(lazy="joined")
    tasks: Mapped[list[PipelineTaskRunModel]] = relationship(
        lazy="selectin", order_by="PipelineTaskRunModel.id", cascade="all, delete-orphan"
    )


class PipelineTaskRunModel(Base):
    """A task of a run: the job that runs it, what it output, and every state it went
    through with the time (`history`)."""

    __tablename__ = "pipeline_task_runs"
    __table_args__ = (UniqueConstraint("run_id", "task"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("pipeline_runs.id", ondelete="CASCADE"))
    task: Mapped[str] = mapped_column(String(63))
    status: Mapped[TaskRunStatus] = mapped_column(state(TaskRunStatus))
    message: Mapped[str] = mapped_column(String(MESSAGE_LIMIT), default="")
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    params: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    outputs: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    history: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class RegisteredModelModel(Base):
    """A named model of a project; its versions are the registered artifacts."""

    __tablename__ = "registered_models"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(String(2000), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    project: Mapped[ProjectModel] = relationship(lazy="joined")
    versions: Mapped[list[ModelVersionModel]] = relationship(
        back_populates="model", order_by="ModelVersionModel.version", passive_deletes=True
    )
    aliases: Mapped[list[ModelAliasModel]] = relationship(
        order_by="ModelAliasModel.alias", passive_deletes=True
    )


class ModelVersionModel(Base):
    """One registered artifact, immutable: where it lies, how to load it, and where it came
    from (lineage). Job and pipeline run ids are copied, not referenced: a version outlives
    the records of the runs that made it."""

    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("model_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(
        ForeignKey("registered_models.id", ondelete="CASCADE"), index=True
    )
    version: Mapped[int] = mapped_column(Integer)
    framework: Mapped[str] = mapped_column(String(32))
    uri: Mapped[str] = mapped_column(String(2000))
    # `module:Class` of a custom model's code.
    entry: Mapped[str | None] = mapped_column(String(200))
    sha256: Mapped[str] = mapped_column(String(64))
    signature: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    params: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    tags: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    description: Mapped[str] = mapped_column(String(2000), default="")
    source_uri: Mapped[str | None] = mapped_column(String(2000))
    source_job_id: Mapped[int | None] = mapped_column(Integer)
    pipeline_run_id: Mapped[int | None] = mapped_column(Integer)
    dataset_uri: Mapped[str | None] = mapped_column(String(2000))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # A lora adapter's base: the llm version of the project it adapts.
    base_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    model: Mapped[RegisteredModelModel] = relationship(back_populates="versions", lazy="joined")
    user: Mapped[UserModel | None] = relationship(lazy="joined")
    base: Mapped[ModelVersionModel | None] = relationship(remote_side="ModelVersionModel.id")


class ModelAliasModel(Base):
    """A movable name (`staging`, `production`, ...) for one version of a model."""

    __tablename__ = "model_aliases"
    __table_args__ = (UniqueConstraint("model_id", "alias"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("registered_models.id", ondelete="CASCADE"))
    alias: Mapped[str] = mapped_column(String(63))
    version: Mapped[int] = mapped_column(Integer)


class EndpointModel(Base):
    """An online endpoint: the spec it runs now (versions and weights, scale, options) and
    the allocation that holds its replicas' resources against the project's quota."""

    __tablename__ = "endpoints"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(63))
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    revision: Mapped[int] = mapped_column(Integer, default=1)
    # The newest revision Serve ran: a revision that fails to deploy goes back to it.
    healthy_revision: Mapped[int | None] = mapped_column(Integer)
    # The revision Serve's application is built from: a revision that changes only what the
    # door decides (`anonymous`, `rate_limit`) keeps the one before, so no replica restarts.
    # None on endpoints made before it was kept: their revision.
    serve_revision: Mapped[int | None] = mapped_column(Integer)
    allocation_id: Mapped[int | None] = mapped_column(
        ForeignKey("allocations.id", ondelete="SET NULL")
    )
    # Why Serve does not have the spec yet (its cluster did not answer); empty once applied.
    message: Mapped[str] = mapped_column(String(MESSAGE_LIMIT), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    project: Mapped[ProjectModel] = relationship(lazy="joined")
    user: Mapped[UserModel] = relationship(lazy="joined")

    @property
    def served_revision(self) -> int:
        """The revision Serve's application should say it runs."""
        return self.serve_revision or self.revision


class EndpointRevisionModel(Base):
    """Every spec an endpoint has had, so that a rollback is one call and history is kept."""

    __tablename__ = "endpoint_revisions"
    __table_args__ = (UniqueConstraint("endpoint_id", "revision"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("endpoints.id", ondelete="CASCADE"))
    revision: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(32))
    # Why, when Fabric made the revision itself (an automatic rollback).
    message: Mapped[str] = mapped_column(String(MESSAGE_LIMIT), default="")
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    user: Mapped[UserModel | None] = relationship(lazy="joined")


class EndpointKeyModel(Base):
    """An API key that calls one endpoint and nothing else; only its SHA-256 is kept."""

    __tablename__ = "endpoint_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(
        ForeignKey("endpoints.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
