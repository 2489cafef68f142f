"""The reconciler's pass: follows jobs on Ray, enforces timeouts, retries failed attempts after
a backoff, submits admitted jobs that lost their request, and starts queued jobs in order.

It works only from the database's state, so a restarted server picks up every job where it
was: running jobs are followed again, none is submitted twice, each is metered once. One
server runs it at a time (the `reconciler` lease); each change it makes to a job is still
conditional on the state it read, so that a user's stop meanwhile is never undone.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.orm import Session

from fabric.backends.base import BackendError, ComputeBackend, JobState
from fabric.clock import Clock
from fabric.config import Settings
from fabric.db.dml import rows_changed
from fabric.db.models import JobModel
from fabric.errors import FabricError, QuotaExceeded
from fabric.runtime import messages, model_store
from fabric.services import registry
from fabric.services.jobs import jobs
from fabric.services.quotas import admission as allocations
from fabric.services.tenancy.actor import Actor
from fabric.states import JobStatus

log = logging.getLogger("fabric.jobs")
SCHEDULER = "fabric-scheduler"


def sync(
    session: Session,
    settings: Settings,
    backend: ComputeBackend,
    clock: Clock,
    *,
    until: datetime | None = None,
) -> None:
    """One pass over the active jobs of every project.

    It stops early, between two jobs, once `until` has come: the lease that lets it run must
    not lapse while it works. The next pass goes on where it stopped.
    """

    def in_time() -> bool:
        return until is None or clock.now() < until

    running = session.scalars(
        select(JobModel)
        .where(
            JobModel.status.in_((JobStatus.PENDING, JobStatus.RUNNING)),
            # Admitted jobs that their request is still submitting have no id yet, nor do
            # jobs waiting to retry.
            JobModel.submission_id.is_not(None),
        )
        .order_by(JobModel.id)
    ).all()
    for job in running:
        if not in_time():
            return
        _follow(session, settings, backend, clock, job)
    due = session.scalars(
        select(JobModel).where(_awaiting_submit(settings, clock.now())).order_by(JobModel.id)
    ).all()
    for job in due:
        if not in_time():
            return
        _submit_due(session, settings, backend, clock, job)
    queued = session.scalars(
        select(JobModel).where(JobModel.status == JobStatus.QUEUED).order_by(JobModel.id)
    ).all()
    # A project's queue is first in, first out: once one of its jobs must wait, later ones
    # (however small) wait behind it.
    waiting: set[int] = set()
    for job in queued:
        if not in_time():
            return
        if job.project_id not in waiting and not _try_start(session, settings, backend, clock, job):
            waiting.add(job.project_id)


def retry_delay(settings: Settings, attempt: int) -> float:
    """Seconds to wait after failed attempt number `attempt` (from 1): doubling, capped."""
    doubled = settings.job_retry_backoff_seconds * 2.0 ** min(attempt - 1, 64)
    return min(settings.job_retry_backoff_max_seconds, doubled)


def _actor(job: JobModel, clock: Clock) -> Actor:
    return Actor(job.user, SCHEDULER, clock)


def _awaiting_submit(settings: Settings, now: datetime) -> ColumnElement[bool]:
    """Admitted jobs with no Ray submission whose (re)submission is due: a retry whose
    backoff has passed, or a job whose request died between admission and Ray."""
    lost = now - timedelta(seconds=settings.job_submit_grace_seconds)
    return and_(
        JobModel.status == JobStatus.PENDING,
        JobModel.allocation_id.is_not(None),
        JobModel.submission_id.is_(None),
        or_(
            JobModel.retry_at <= now,
            and_(JobModel.retry_at.is_(None), JobModel.created_at <= lost),
        ),
    )


def _follow(
    session: Session, settings: Settings, backend: ComputeBackend, clock: Clock, job: JobModel
) -> None:
    assert job.submission_id is not None
    session.commit()  # no transaction stays open across the call to Ray
    try:
        state = backend.job_state(job.project.name, job.submission_id)
    except BackendError as exc:
        log.warning("cannot follow job %s: %s", job.id, exc)
        return
    actor = _actor(job, clock)
    now = clock.now()
    if state.status is JobStatus.RUNNING and job.status == JobStatus.PENDING:
        job.status = JobStatus.RUNNING
        jobs.started(session, job, now)
        session.commit()
    timed_out = (
        job.status == JobStatus.RUNNING
        and job.timeout_seconds is not None
        and job.started_at is not None
        and (now - job.started_at).total_seconds() > job.timeout_seconds
    )
    if timed_out:
        jobs.halt(session, backend, actor, job, f"timed out after {job.timeout_seconds:g} s")
        return
    if state.status.terminal:
        _ended(session, settings, actor, job, state)


def _ended(
    session: Session, settings: Settings, actor: Actor, job: JobModel, state: JobState
) -> None:
    if job.started_at is None and state.start_time and state.status is not JobStatus.STOPPED:
        # It ran and ended between two passes (0.2 s apart), or was seen only PENDING. Ray
        # knows only when it was submitted: it is billed from there, which overcounts only a
        # job that waited for the cluster and then ran for less than a pass.
        jobs.started(session, job, datetime.fromtimestamp(state.start_time, UTC))
    if state.status is JobStatus.FAILED:
        state = replace(state, message=_with_last_lines(job, state.message))
    if state.status is JobStatus.FAILED and job.attempt <= job.max_retries:
        _retry_later(session, settings, actor, job, state)
        return
    jobs.finish(session, actor, job, state.status, state.message)
    if state.status is JobStatus.SUCCEEDED and job.template == model_store.REGISTER_TEMPLATE:
        registry.import_from_job(session, settings, actor, job)


def _with_last_lines(job: JobModel, message: str) -> str:
    """Ray's reason with the log's last lines after it, and where the whole log is.

    Ray appends up to 20,000 characters of the log's end to its first line; stored as they
    come, cut to the message's limit, they would keep the *first* of those lines and lose the
    last ones, where the error is.
    """
    reason, _, logs = message.partition("\n")
    if not logs.strip():
        return message
    reason = reason.split(", last available logs")[0].rstrip(":")
    head = (
        f"{reason} (its last lines below; the whole log: "
        f"`fabric job logs {job.project.name} {job.id}`):"
    )
    room = messages.MESSAGE_LIMIT - len(head) - 1
    lines = logs.rstrip().splitlines()
    kept: list[str] = []
    while lines and len(lines[-1]) < room:
        room -= len(lines[-1]) + 1
        kept.insert(0, lines.pop())
    if not kept:
        # One line longer than the room: its end, where the error is.
        kept = [lines[-1][-room:]]
    return "\n".join([head, *kept])


def _retry_later(
    session: Session, settings: Settings, actor: Actor, job: JobModel, state: JobState
) -> None:
    """Have a later pass start the job's next attempt, after a backoff that doubles with each
    failure so that a failing dependency is not hammered.

    The job stays PENDING and keeps its allocation meanwhile; its ended submission is
    forgotten, so that no pass follows it again.
    """
    delay = retry_delay(settings, job.attempt)
    retry_at = actor.now() + timedelta(seconds=delay)
    message = (
        f"retrying at {retry_at:%Y-%m-%d %H:%M:%S} UTC (in {delay:g} s): "
        f"attempt {job.attempt} failed: {state.message or 'no reason given'}"
    )
    log.info("job %s failed (attempt %s); retrying in %g s", job.id, job.attempt, delay)
    session.execute(
        update(JobModel)
        .where(
            JobModel.id == job.id,
            JobModel.status.in_((JobStatus.PENDING, JobStatus.RUNNING)),
            JobModel.submission_id == job.submission_id,
        )
        .values(
            status=JobStatus.PENDING,
            submission_id=None,
            retry_at=retry_at,
            message=messages.truncate(message),
        )
    )
    session.commit()
    session.refresh(job)


def _submit_due(
    session: Session, settings: Settings, backend: ComputeBackend, clock: Clock, job: JobModel
) -> None:
    """Submit an admitted job whose (re)submission is due (see `_awaiting_submit`).

    The claim moves retry_at a grace period on, in an update conditional on the job still
    being due: no other pass submits it meanwhile, and should this one die before Ray answers,
    the job is tried again once the grace period has passed.
    """
    lost_its_request = job.retry_at is None
    now = clock.now()
    claimed = rows_changed(
        session,
        update(JobModel)
        .where(JobModel.id == job.id, _awaiting_submit(settings, now))
        .values(retry_at=now + timedelta(seconds=settings.job_submit_grace_seconds)),
    )
    session.commit()
    if claimed == 0:
        return
    session.refresh(job)
    if lost_its_request:
        log.warning("job %s was admitted but never submitted; submitting it now", job.id)
    jobs.start(session, settings, backend, _actor(job, clock), job)
    # A job whose cluster is still starting keeps the retry time start() gave it.
    if job.submission_id is not None or job.status != JobStatus.PENDING:
        job.retry_at = None
        session.commit()


def _try_start(
    session: Session, settings: Settings, backend: ComputeBackend, clock: Clock, job: JobModel
) -> bool:
    """Admit and submit a queued job; False when it must go on waiting (it may fit later)."""
    actor = _actor(job, clock)
    try:
        allocation = jobs.admit(session, actor, job, job.project.name)
    except QuotaExceeded as exc:
        if exc.may_fit_later:
            return False
        jobs.finish(session, actor, job, JobStatus.FAILED, exc.message)
        return True
    except FabricError as exc:
        # The user left the project, the pool was taken away, ...: the job cannot run.
        jobs.finish(session, actor, job, JobStatus.FAILED, exc.message)
        return True
    # PENDING with its allocation in one commit: no later pass admits it again, and should
    # this one die before Ray answers, the job is submitted as one that lost its request.
    admitted = rows_changed(
        session,
        update(JobModel)
        .where(JobModel.id == job.id, JobModel.status == JobStatus.QUEUED)
        .values(status=JobStatus.PENDING, allocation_id=allocation.id),
    )
    if admitted == 0:
        # Stopped while it was being admitted: give the resources back.
        allocations.lock_project(session, job.project_id)
        allocations.meter(session, actor, job.project, allocation)
        session.commit()
        return True
    session.commit()
    session.refresh(job)
    jobs.start(session, settings, backend, actor, job)
    return True
