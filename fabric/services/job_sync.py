"""The reconciler: follows jobs on Ray, enforces timeouts and retries, starts queued jobs.

It works only from the database's state, so a restarted server picks up every job where it
was: running jobs are followed again, none is submitted twice, each is metered once.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from fabric.backends.base import BackendUnavailable, ComputeBackend, JobState, JobStatus
from fabric.backends.ray_jobs import RayApiError
from fabric.clock import Clock
from fabric.config import Settings
from fabric.db.models import JobModel
from fabric.errors import FabricError, QuotaExceeded
from fabric.services import allocations, jobs
from fabric.services.actor import Actor

log = logging.getLogger("fabric.jobs")
SCHEDULER = "fabric-scheduler"


def sync(session: Session, settings: Settings, backend: ComputeBackend, clock: Clock) -> None:
    """One pass over the active jobs of every project."""
    running = session.scalars(
        select(JobModel)
        .where(
            JobModel.status.in_((jobs.PENDING, jobs.RUNNING)),
            # Admitted jobs that their request is still submitting have no id yet.
            JobModel.submission_id.is_not(None),
        )
        .order_by(JobModel.id)
    ).all()
    for job in running:
        _follow(session, settings, backend, clock, job)
    queued = session.scalars(
        select(JobModel).where(JobModel.status == jobs.QUEUED).order_by(JobModel.id)
    ).all()
    for job in queued:
        _try_start(session, settings, backend, clock, job)


def _actor(job: JobModel, clock: Clock) -> Actor:
    return Actor(job.user, SCHEDULER, clock)


def _follow(
    session: Session, settings: Settings, backend: ComputeBackend, clock: Clock, job: JobModel
) -> None:
    assert job.submission_id is not None
    session.commit()  # no transaction stays open across the call to Ray
    try:
        state = backend.job_state(job.project.name, job.submission_id)
    except (BackendUnavailable, RayApiError) as exc:
        log.warning("cannot follow job %s: %s", job.id, exc)
        return
    actor = _actor(job, clock)
    now = clock.now()
    if state.status is JobStatus.RUNNING and job.status == jobs.PENDING:
        job.status = jobs.RUNNING
        job.started_at = now
        session.commit()
    timed_out = (
        job.status == jobs.RUNNING
        and job.timeout_seconds is not None
        and job.started_at is not None
        and (now - job.started_at).total_seconds() > job.timeout_seconds
    )
    if timed_out:
        backend.stop_job(job.project.name, job.submission_id)
        jobs.finish(session, actor, job, jobs.STOPPED, f"timed out after {job.timeout_seconds:g} s")
        return
    if state.status.terminal:
        _ended(session, settings, backend, actor, job, state)


def _ended(
    session: Session,
    settings: Settings,
    backend: ComputeBackend,
    actor: Actor,
    job: JobModel,
    state: JobState,
) -> None:
    if job.started_at is None and state.start_time:
        # It ran and ended between two passes: Ray knows when it started.
        job.started_at = datetime.fromtimestamp(state.start_time, UTC)
    if state.status is JobStatus.FAILED and job.attempt <= job.max_retries:
        log.info("job %s failed (attempt %s); retrying", job.id, job.attempt)
        jobs.start(session, settings, backend, actor, job)
        return
    jobs.finish(session, actor, job, state.status.value, state.message)


def _try_start(
    session: Session, settings: Settings, backend: ComputeBackend, clock: Clock, job: JobModel
) -> None:
    actor = _actor(job, clock)
    try:
        allocation = allocations.admit(
            session,
            actor,
            job.project.name,
            resources=job.resources,
            pool=job.pool,
            purpose=f"job {job.name}",
            expected_seconds=job.timeout_seconds,
        )
    except QuotaExceeded as exc:
        if not exc.may_fit_later:
            jobs.finish(session, actor, job, jobs.FAILED, exc.message)
        return
    except FabricError as exc:
        # The user left the project, the pool was taken away, ...: the job cannot run.
        jobs.finish(session, actor, job, jobs.FAILED, exc.message)
        return
    job.allocation_id = allocation.id
    session.commit()
    jobs.start(session, settings, backend, actor, job)
