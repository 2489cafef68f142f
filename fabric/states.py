"""The platform's state machines, one enum each: the states a job, a pipeline run, a task
run, a run's alert and an endpoint go through, and how a run was started.

The database stores these values, the API serves them (so its OpenAPI document lists them),
and the services, the backends and the CLI compare against them: one word per state, spelled
in this module alone. The values are stored data and API output, so never rename one.
"""

from __future__ import annotations

from enum import StrEnum


class JobStatus(StrEnum):
    """A job's states. QUEUED is Fabric's own (waiting for quota, or behind its project's
    queue); the others are Ray's job states, the only ones a backend ever reports."""

    QUEUED = "QUEUED"
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    STOPPED = "STOPPED"

    @property
    def terminal(self) -> bool:
        return self in JOB_ENDED


# A job that holds, or waits for, its place in the project's quota.
JOB_ACTIVE = (JobStatus.QUEUED, JobStatus.PENDING, JobStatus.RUNNING)
# A job not running yet: waiting for quota, or for Ray to start it.
JOB_WAITING = (JobStatus.QUEUED, JobStatus.PENDING)
JOB_ENDED = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED)


class PipelineRunStatus(StrEnum):
    """A pipeline run's states: QUEUED until the scheduler starts it (within the pipeline's
    `max_active_runs`, and after the previous tick's success with `depends_on_past`),
    CANCELLING while its jobs stop."""

    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    CANCELLING = "CANCELLING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


RUN_ACTIVE = (PipelineRunStatus.QUEUED, PipelineRunStatus.RUNNING, PipelineRunStatus.CANCELLING)
# A run the scheduler advances: it holds one of its pipeline's `max_active_runs`.
RUN_STARTED = (PipelineRunStatus.RUNNING, PipelineRunStatus.CANCELLING)
RUN_ENDED = (PipelineRunStatus.SUCCEEDED, PipelineRunStatus.FAILED, PipelineRunStatus.CANCELLED)


class TaskRunStatus(StrEnum):
    """A task run's states: WAITING for its upstream tasks, RUNNING while its job is not
    ended (the job's own status says whether it waits for quota), then one of the ends."""

    WAITING = "WAITING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"
    UPSTREAM_FAILED = "UPSTREAM_FAILED"
    CANCELLED = "CANCELLED"


# A task whose downstream tasks may start: it succeeded, or it was not to run.
TASK_DONE = (TaskRunStatus.SUCCEEDED, TaskRunStatus.SKIPPED)
TASK_ENDED = (
    TaskRunStatus.SUCCEEDED,
    TaskRunStatus.FAILED,
    TaskRunStatus.SKIPPED,
    TaskRunStatus.UPSTREAM_FAILED,
    TaskRunStatus.CANCELLED,
)


class RunTrigger(StrEnum):
    """How a pipeline run was started."""

    MANUAL = "manual"
    SCHEDULE = "schedule"
    BACKFILL = "backfill"


class AlertStatus(StrEnum):
    """Where the webhook call a run's end owes stands: PENDING until it was sent, or until
    every try failed."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


class EndpointStatus(StrEnum):
    """An endpoint's state as the API shows it. An endpoint stores no state of its own: this
    is Serve's status of its application, read when asked (Serve's `ApplicationStatus`
    values), or what Fabric knows before Serve can say: PENDING while Serve has not taken the
    spec (its cluster did not answer), DEPLOYING until Serve runs the endpoint's current
    revision, UNKNOWN when Serve cannot be asked."""

    PENDING = "PENDING"
    UNKNOWN = "UNKNOWN"
    NOT_STARTED = "NOT_STARTED"
    DEPLOYING = "DEPLOYING"
    DEPLOY_FAILED = "DEPLOY_FAILED"
    RUNNING = "RUNNING"
    UNHEALTHY = "UNHEALTHY"
    DELETING = "DELETING"
