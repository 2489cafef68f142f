"""The scheduler's pass over pipelines: schedule ticks become runs, queued runs start within
their limits, ready tasks start as jobs, and ended jobs end their tasks and runs.

It runs inside the reconciler's pass, under its lease, so one server at a time schedules.
All state is in the database and each task's job is created in the same commit that records
it on the task, so a server killed at any point and started again goes on where it was: no
task runs twice and none is lost. Jobs bring their own quota admission, queue, logs, retries
with backoff, timeout and metering (see `jobs` and `job_sync`).
"""

from __future__ import annotations

import logging
import shutil
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fabric import runtime, storage
from fabric.backends.base import ComputeBackend, Feature
from fabric.clock import Clock
from fabric.config import Settings
from fabric.db.dml import rows_changed
from fabric.db.models import JobModel, PipelineModel, PipelineRunModel, PipelineTaskRunModel
from fabric.errors import FabricError
from fabric.runtime import messages
from fabric.services.jobs import jobs
from fabric.services.pipelines import alerts as pipeline_alerts
from fabric.services.pipelines import params as pipeline_params
from fabric.services.pipelines import pipelines
from fabric.services.pipelines import specs as pipeline_specs
from fabric.services.tenancy.actor import Actor
from fabric.states import (
    JOB_ACTIVE,
    RUN_ACTIVE,
    RUN_STARTED,
    TASK_DONE,
    TASK_ENDED,
    AlertStatus,
    JobStatus,
    PipelineRunStatus,
    RunTrigger,
    TaskRunStatus,
)

log = logging.getLogger("fabric.pipelines")
SCHEDULER = "fabric-pipelines"
MAX_TICKS_PER_PASS = 100


def sync(
    session: Session,
    settings: Settings,
    backend: ComputeBackend,
    clock: Clock,
    *,
    until: datetime | None = None,
) -> None:
    """One pass; it stops early, between two runs, once `until` has come (see job_sync)."""
    _schedule(session, clock)
    _start_runs(session, clock)
    active = session.scalars(
        select(PipelineRunModel)
        .where(PipelineRunModel.status.in_(RUN_STARTED))
        .order_by(PipelineRunModel.id)
    ).all()
    # Ready tasks start in priority order: the pipeline's priority, then the run's age.
    for run in sorted(active, key=lambda run: -int(run.spec.get("priority", 0))):
        if until is not None and clock.now() >= until:
            return
        _advance(session, settings, backend, clock, run)


def _schedule(session: Session, clock: Clock) -> None:
    """A run for each schedule tick that came (only the newest unless catchup is on)."""
    now = clock.now()
    for pipeline in session.scalars(
        select(PipelineModel).where(PipelineModel.paused.is_(False))
    ).all():
        schedule = pipelines.spec_of(pipeline).schedule
        if schedule is None:
            continue
        since = (
            pipeline.last_tick + timedelta(microseconds=1)
            if pipeline.last_tick is not None
            else schedule.start_date or pipeline.created_at
        )
        due = pipeline_specs.ticks(schedule.cron, since, now, MAX_TICKS_PER_PASS)
        if not due:
            continue
        for tick in due if schedule.catchup else due[-1:]:
            pipelines.new_run(
                session, pipeline, pipeline.user_id, RunTrigger.SCHEDULE, tick, now, tick=tick
            )
        pipeline.last_tick = due[-1]
        try:
            session.commit()
        except IntegrityError:
            # A backfill made a run for one of these ticks: the next pass skips past it.
            session.rollback()
            session.execute(
                update(PipelineModel)
                .where(PipelineModel.id == pipeline.id)
                .values(last_tick=due[-1])
            )
            session.commit()


def _start_runs(session: Session, clock: Clock) -> None:
    """Start queued runs, oldest logical date first, within each pipeline's max_active_runs;
    with depends_on_past a run also waits until the previous tick's run succeeded."""
    queued = session.scalars(
        select(PipelineRunModel)
        .where(PipelineRunModel.status == PipelineRunStatus.QUEUED)
        .order_by(PipelineRunModel.logical_date, PipelineRunModel.id)
    ).all()
    active: dict[int, int] = {}
    for run in queued:
        if run.pipeline_id not in active:
            active[run.pipeline_id] = _count_active(session, run.pipeline_id)
        spec = pipelines.spec_of(run)
        waiting = ""
        if active[run.pipeline_id] >= spec.max_active_runs:
            waiting = f"waiting: max_active_runs ({spec.max_active_runs}) runs are active"
        elif spec.depends_on_past and run.tick is not None:
            previous = _previous_tick_run(session, run)
            if previous is not None and previous.status != PipelineRunStatus.SUCCEEDED:
                waiting = (
                    f"waiting: depends_on_past, and run {previous.number} "
                    f"({previous.logical_date:%Y-%m-%d %H:%M}) is {previous.status}"
                )
        if waiting:
            if run.message != waiting:
                run.message = waiting
                session.commit()
            continue
        started = rows_changed(
            session,
            update(PipelineRunModel)
            .where(
                PipelineRunModel.id == run.id, PipelineRunModel.status == PipelineRunStatus.QUEUED
            )
            .values(status=PipelineRunStatus.RUNNING, started_at=clock.now(), message=""),
        )
        session.commit()
        if started:
            active[run.pipeline_id] += 1


def _count_active(session: Session, pipeline_id: int) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(PipelineRunModel)
            .where(
                PipelineRunModel.pipeline_id == pipeline_id,
                PipelineRunModel.status.in_(RUN_STARTED),
            )
        )
        or 0
    )


def _previous_tick_run(session: Session, run: PipelineRunModel) -> PipelineRunModel | None:
    return session.scalar(
        select(PipelineRunModel)
        .where(
            PipelineRunModel.pipeline_id == run.pipeline_id,
            PipelineRunModel.tick.is_not(None),
            PipelineRunModel.tick < run.tick,
        )
        .order_by(PipelineRunModel.tick.desc())
        .limit(1)
    )


def _advance(
    session: Session,
    settings: Settings,
    backend: ComputeBackend,
    clock: Clock,
    run: PipelineRunModel,
) -> None:
    actor = Actor(run.user, SCHEDULER, clock)
    spec = pipelines.spec_of(run)
    if run.status == PipelineRunStatus.CANCELLING:
        _stop(
            session,
            settings,
            backend,
            actor,
            run,
            PipelineRunStatus.CANCELLED,
            run.message,
            "its run was cancelled",
        )
        return
    if (
        spec.timeout_seconds is not None
        and run.started_at is not None
        and (clock.now() - run.started_at).total_seconds() > spec.timeout_seconds
    ):
        message = f"timed out after {spec.timeout_seconds:g} s"
        _stop(
            session,
            settings,
            backend,
            actor,
            run,
            PipelineRunStatus.FAILED,
            message,
            "its run timed out",
            True,
        )
        return
    tasks = {task.task: task for task in run.tasks}
    for task in tasks.values():
        if task.status == TaskRunStatus.RUNNING:
            _follow(session, settings, actor, run, task)
    running = sum(task.status == TaskRunStatus.RUNNING for task in tasks.values())
    for name in spec.order():
        task = tasks[name]
        if task.status != TaskRunStatus.WAITING:
            continue
        upstream = [tasks[other] for other in spec.tasks[name].after]
        failed = [
            other.task
            for other in upstream
            if other.status in TASK_ENDED and other.status not in TASK_DONE
        ]
        if failed:
            pipelines.transition(
                task,
                TaskRunStatus.UPSTREAM_FAILED,
                clock.now(),
                f"upstream failed: {', '.join(failed)}",
            )
            session.commit()
        elif (
            all(other.status in TASK_DONE for other in upstream)
            and running < spec.parallelism
            and _start(session, settings, backend, actor, run, task, tasks)
        ):
            running += 1
    if all(task.status in TASK_ENDED for task in tasks.values()):
        failed = [task.task for task in tasks.values() if task.status not in TASK_DONE]
        status = PipelineRunStatus.FAILED if failed else PipelineRunStatus.SUCCEEDED
        message = f"failed: {', '.join(failed)}" if failed else ""
        _end(session, settings, run, status, message, clock.now())


def _follow(
    session: Session,
    settings: Settings,
    actor: Actor,
    run: PipelineRunModel,
    task: PipelineTaskRunModel,
) -> None:
    """End the task once its job ended, keeping the outputs the job wrote."""
    job = session.get(JobModel, task.job_id) if task.job_id is not None else None
    if job is None:
        pipelines.transition(task, TaskRunStatus.FAILED, actor.now(), "its job's record is gone")
    elif job.status in JOB_ACTIVE:
        return
    elif job.status == JobStatus.SUCCEEDED:
        project = run.pipeline.project.name
        task.outputs = runtime.read_outputs(storage.run_dir(settings, project, job.id))
        pipelines.transition(task, TaskRunStatus.SUCCEEDED, actor.now())
    else:
        pipelines.transition(
            task, TaskRunStatus.FAILED, actor.now(), f"job {job.id} {job.status}: {job.message}"
        )
    session.commit()


def _start(
    session: Session,
    settings: Settings,
    backend: ComputeBackend,
    actor: Actor,
    run: PipelineRunModel,
    task: PipelineTaskRunModel,
    tasks: dict[str, PipelineTaskRunModel],
) -> bool:
    """Start the task's job; False when the task failed before it could start.

    The job's row and the task's link to it commit together: a server that dies before that
    commit leaves neither, and the task is started afresh by the next pass.
    """
    spec = pipelines.spec_of(run).tasks[task.task]
    project = run.pipeline.project.name
    scope = pipeline_params.context(
        run.logical_date,
        run.id,
        run.variables,
        # Succeeded tasks' outputs, and those lent to a task run alone (see pipelines.new_run).
        {name: other.outputs for name, other in tasks.items() if other.outputs is not None},
    )
    try:
        params = pipeline_params.render(spec.params, scope)
        job = jobs.create(
            session,
            settings,
            backend,
            actor,
            project,
            template=spec.template,
            params=params,
            name=f"{run.pipeline.name}.{run.number}.{task.task}"[:100],
            resources=spec.resources,
            workers=spec.workers,
            worker_resources=spec.worker_resources,
            pool=spec.pool,
            timeout_seconds=spec.timeout_seconds,
            max_retries=spec.retries,
            runtime_env=spec.runtime_env,
            warm=spec.warm if Feature.WARM_TASKS in backend.features else False,
        )
    except (pipeline_params.ParamError, FabricError) as exc:
        session.rollback()
        message = exc.message if isinstance(exc, FabricError) else f"params: {exc}"
        pipelines.transition(task, TaskRunStatus.FAILED, actor.now(), f"could not start: {message}")
        session.commit()
        return False
    task.job_id = job.id
    task.params = params
    pipelines.transition(task, TaskRunStatus.RUNNING, actor.now(), job.message)
    session.commit()
    if job.status == JobStatus.PENDING:
        jobs.start(session, settings, backend, actor, job)
    return True


def _stop(
    session: Session,
    settings: Settings,
    backend: ComputeBackend,
    actor: Actor,
    run: PipelineRunModel,
    status: PipelineRunStatus,
    message: str,
    why: str,
    timed_out: bool = False,
) -> None:
    """Stop the run's jobs, end its unfinished tasks as CANCELLED, and the run as `status`."""
    now = actor.now()
    for task in run.tasks:
        if task.status in TASK_ENDED:
            continue
        job = session.get(JobModel, task.job_id) if task.job_id is not None else None
        if job is not None and job.status in JOB_ACTIVE:
            jobs.halt(session, backend, actor, job, why)
        pipelines.transition(task, TaskRunStatus.CANCELLED, now, why)
        session.commit()
    _end(session, settings, run, status, message, now, timed_out=timed_out)


def _end(
    session: Session,
    settings: Settings,
    run: PipelineRunModel,
    status: PipelineRunStatus,
    message: str,
    now: datetime,
    *,
    timed_out: bool = False,
) -> None:
    """End the run, unless a user changed its state meanwhile (a cancel: the next pass), and
    owe the webhook call its pipeline asked for in the same update."""
    event = pipeline_alerts.owed(run, status, timed_out)
    alert = {"alert_event": event, "alert_status": AlertStatus.PENDING, "alert_at": now}
    ended = rows_changed(
        session,
        update(PipelineRunModel)
        .where(PipelineRunModel.id == run.id, PipelineRunModel.status == run.status)
        .values(
            status=status,
            message=messages.truncate(message),
            ended_at=now,
            **(alert if event else {}),
        ),
    )
    session.commit()
    if ended:
        log.info("pipeline %s run %s %s", run.pipeline.name, run.number, status)
        _expire(session, settings, run.pipeline)


def _expire(session: Session, settings: Settings, pipeline: PipelineModel) -> None:
    """Keep the newest `expired_limit` ended runs; delete the others' records and their
    jobs' run folders (the jobs' rows stay, for usage and audit)."""
    limit = pipelines.spec_of(pipeline).expired_limit
    if limit is None:
        return
    expired = session.scalars(
        select(PipelineRunModel)
        .where(
            PipelineRunModel.pipeline_id == pipeline.id,
            PipelineRunModel.status.not_in(RUN_ACTIVE),
        )
        .order_by(PipelineRunModel.id.desc())
        .offset(limit)
    ).all()
    for run in expired:
        for task in run.tasks:
            if task.job_id is not None:
                folder = storage.run_dir(settings, pipeline.project.name, task.job_id)
                shutil.rmtree(folder, ignore_errors=True)
        session.delete(run)
    if expired:
        log.info("pipeline %s: cleaned %s expired runs", pipeline.name, len(expired))
    session.commit()
