"""The reconciler's pass on a real database and Ray head: each project's queue in order,
retries after a backoff, and admitted jobs whose server died submitted once."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from fabric.config import Settings
from fabric.db.models import TokenModel
from fabric.errors import QuotaExceeded
from fabric.services.jobs import jobs
from fabric.services.jobs import sync as job_sync
from fabric.states import JobStatus
from tests.services.world import ServerDied, World

FAILS = "python -c \"raise SystemExit('broken on purpose')\""


def test_a_project_queue_is_first_in_first_out(world: World) -> None:
    vision, speech = world.project(cpu=0.2), world.project(cpu=0.1)
    held = world.hold(vision, 0.1)
    speech_held = world.hold(speech, 0.1)
    big = world.submit(vision, "python -c pass", 0.2)
    small = world.submit(vision, "python -c pass", 0.1)
    other = world.submit(speech, "python -c pass", 0.1)
    assert big.status == small.status == JobStatus.QUEUED, "small fits, but waits"
    with pytest.raises(QuotaExceeded, match=r"0\.3 requested exceeds it") as never:
        world.submit(vision, "python -c pass", 0.3)
    assert not never.value.may_fit_later, "one that can never fit is refused, queue or not"
    world.release(speech, speech_held)
    reconciler = world.reconciler()

    assert reconciler.reconcile_once()
    assert world.job(small.id).status == JobStatus.QUEUED, "small does not overtake big"
    assert world.job(big.id).status == JobStatus.QUEUED
    assert world.job(other.id).status == JobStatus.PENDING, "another project's queue is its own"

    world.release(vision, held)
    assert reconciler.reconcile_once()
    assert world.job(big.id).status == JobStatus.PENDING
    assert world.job(small.id).status == JobStatus.QUEUED


def test_a_failed_attempt_waits_its_backoff_then_runs_again(world: World) -> None:
    owner = world.project(cpu=1)
    job = world.submit(owner, FAILS, 0.1, max_retries=1)
    reconciler = world.reconciler(job_retry_backoff_seconds=30)

    waiting = world.run_until(reconciler, job.id, lambda j: j.retry_at is not None)
    assert (waiting.status, waiting.attempt, waiting.submission_id) == (JobStatus.PENDING, 1, None)
    assert waiting.message.startswith("retrying at ")
    assert "(in 30 s): attempt 1 failed" in waiting.message
    assert waiting.retry_at is not None
    # Real time passes between the pass that set it and this read: seconds, under load.
    assert 20 < (waiting.retry_at - world.clock.now()).total_seconds() <= 30
    assert world.allocation(waiting.allocation_id or 0).state == "active", "held while waiting"
    assert reconciler.reconcile_once()
    assert world.job(job.id).attempt == 1, "not before its time"

    world.clock.advance(30)
    assert reconciler.reconcile_once()
    again = world.job(job.id)
    assert (again.attempt, again.retry_at, again.message) == (2, None, "")
    assert again.submission_id is not None
    failed = world.run_to_end(reconciler, job.id)
    assert (failed.status, failed.attempt) == (JobStatus.FAILED, 2)
    assert world.allocation(failed.allocation_id or 0).state == "released"
    assert len(world.backend.submitted) == 2


def test_a_job_stopped_while_it_waits_to_retry_never_runs_again(world: World) -> None:
    owner = world.project(cpu=1)
    job = world.submit(owner, FAILS, 0.1, max_retries=3)
    reconciler = world.reconciler()
    world.run_until(reconciler, job.id, lambda j: j.retry_at is not None)
    with world.sessions() as session:
        jobs.stop(session, world.backend, owner.actor, owner.project, job.id)
    world.clock.advance(60)
    assert reconciler.reconcile_once()
    stopped = world.job(job.id)
    assert (stopped.status, stopped.attempt) == (JobStatus.STOPPED, 1)
    assert world.allocation(stopped.allocation_id or 0).state == "released"
    assert len(world.backend.submitted) == 1


def test_retry_delays_double_up_to_their_cap() -> None:
    settings = Settings(job_retry_backoff_seconds=1.5, job_retry_backoff_max_seconds=10)
    delays = [job_sync.retry_delay(settings, attempt) for attempt in (1, 2, 3, 4, 5, 10_000)]
    assert delays == [1.5, 3, 6, 10, 10, 10]


def test_an_admitted_job_whose_server_died_is_submitted_once(world: World) -> None:
    owner = world.project(cpu=1)
    world.backend.die_in_next_submit = True
    with pytest.raises(ServerDied):
        world.submit(owner, "python -c pass", 0.1)
    [job_id] = world.job_ids(owner)
    reconciler = world.reconciler()
    assert reconciler.reconcile_once()
    stuck = world.job(job_id)
    assert (stuck.status, stuck.submission_id) == (JobStatus.PENDING, None), "its request may live"

    world.clock.advance(world.settings.job_submit_grace_seconds)
    # A second pass (as if a lease had lapsed) while the first one is submitting the job.
    world.backend.during_next_submit = lambda: _another_pass(world)
    assert reconciler.reconcile_once()
    assert reconciler.reconcile_once()
    submitted = world.job(job_id)
    assert submitted.submission_id is not None and submitted.attempt == 1
    assert world.backend.submitted == [submitted.submission_id]
    done = world.run_to_end(reconciler, job_id)
    assert done.status == JobStatus.SUCCEEDED


def test_a_job_waits_admitted_while_its_cluster_starts_then_runs_once(world: World) -> None:
    owner = world.project(cpu=1)
    world.backend.starting_for_submits = 2
    job = world.submit(owner, "python -c pass", 0.1)
    assert (job.status, job.submission_id) == (JobStatus.PENDING, None)
    assert job.message.endswith("is starting: no head pod yet")
    assert world.allocation(job.allocation_id or 0).state == "active", "its resources are held"
    reconciler = world.reconciler()
    assert reconciler.reconcile_once()
    assert world.job(job.id).submission_id is None, "not asked again before its time"

    world.clock.advance(world.settings.cluster_poll_seconds)
    assert reconciler.reconcile_once()
    still = world.job(job.id)
    assert (still.status, still.submission_id, still.attempt) == (JobStatus.PENDING, None, 0)
    assert still.retry_at is not None, "it keeps its place for the next ask"

    world.clock.advance(world.settings.cluster_poll_seconds)
    assert reconciler.reconcile_once()
    started = world.job(job.id)
    assert started.submission_id is not None and started.attempt == 1
    assert world.backend.submitted == [started.submission_id]
    with world.sessions() as session:
        live = session.scalars(
            select(TokenModel).where(
                TokenModel.name == f"job-{job.id}", TokenModel.revoked_at.is_(None)
            )
        ).all()
    assert len(live) == 1, "each ask's token is revoked when the ask is refused"
    assert world.run_to_end(reconciler, job.id).status == JobStatus.SUCCEEDED


def _another_pass(world: World) -> None:
    with world.sessions() as session:
        job_sync.sync(session, world.settings, world.backend, world.clock)
