"""Pipelines of a project and their runs: apply a spec, trigger, backfill, cancel, re-run.

This module records what users ask for; `pipeline_sync` (in the reconciler's pass, under its
lease) does the running: it starts queued runs, starts each task as a job of the project when
its upstream tasks succeeded, and follows those jobs to the end. A run keeps its own copy of
the spec, so applying a new version changes no run under way.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fabric.config import Settings
from fabric.db.dml import rows_changed
from fabric.db.models import PipelineModel, PipelineRunModel, PipelineTaskRunModel
from fabric.errors import Conflict, InvalidSpec, NotFound
from fabric.runtime import messages
from fabric.services.pipelines import specs as pipeline_specs
from fabric.services.pipelines.specs import PipelineSpec
from fabric.services.tenancy import audit, projects
from fabric.services.tenancy.actor import Actor
from fabric.services.tenancy.roles import Role
from fabric.states import (
    RUN_ACTIVE,
    TASK_DONE,
    TASK_ENDED,
    PipelineRunStatus,
    RunTrigger,
    TaskRunStatus,
)

MAX_BACKFILL = 1000
_TICK = timedelta(microseconds=1)
_YEARS = timedelta(days=366 * 5)


def apply(
    session: Session, settings: Settings, actor: Actor, project_name: str, raw: dict[str, Any]
) -> tuple[PipelineModel, bool]:
    """Create the pipeline, or replace its spec with a new version; (pipeline, created)."""
    project = projects.get_for(session, actor, project_name, Role.MEMBER)
    spec = pipeline_specs.parse(raw)
    pipeline_specs.check(session, settings, actor, project.name, spec)
    now = actor.now()
    pipeline = _find(session, project.id, spec.name)
    created = pipeline is None
    stored = spec.model_dump(mode="json", exclude_defaults=True)
    if pipeline is None:
        pipeline = PipelineModel(
            project_id=project.id,
            user_id=actor.user.id,
            name=spec.name,
            version=1,
            spec=stored,
            paused=False,
            created_at=now,
            updated_at=now,
        )
        session.add(pipeline)
    else:
        if _schedule(pipeline.spec) != _schedule(stored):
            # A new schedule starts from its own start date, not from the old one's ticks.
            pipeline.last_tick = None
        pipeline.version += 1
        pipeline.spec = stored
        pipeline.user_id = actor.user.id
        pipeline.updated_at = now
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise Conflict(
            f"pipeline {spec.name!r} was applied by someone else meanwhile; retry"
        ) from None
    audit.record(
        session,
        actor,
        "pipeline.apply",
        "pipeline",
        spec.name,
        project=project.name,
        detail={"version": pipeline.version},
    )
    session.commit()
    return pipeline, created


def _schedule(stored: dict[str, Any]) -> Any:
    return stored.get("schedule")


def spec_of(pipeline: PipelineModel | PipelineRunModel) -> PipelineSpec:
    return PipelineSpec.model_validate(pipeline.spec)


def _find(session: Session, project_id: int, name: str) -> PipelineModel | None:
    return session.scalar(
        select(PipelineModel).where(
            PipelineModel.project_id == project_id, PipelineModel.name == name
        )
    )


def get(
    session: Session, actor: Actor, project_name: str, name: str, needs: Role = Role.VIEWER
) -> PipelineModel:
    project = projects.get_for(session, actor, project_name, needs)
    pipeline = _find(session, project.id, name)
    if pipeline is None:
        raise NotFound(f"pipeline {name!r} not found in project {project_name!r}")
    return pipeline


def list_for(session: Session, actor: Actor, project_name: str) -> list[PipelineModel]:
    project = projects.get_for(session, actor, project_name)
    return list(
        session.scalars(
            select(PipelineModel)
            .where(PipelineModel.project_id == project.id)
            .order_by(PipelineModel.name)
        )
    )


def delete(session: Session, actor: Actor, project_name: str, name: str) -> None:
    """Delete a pipeline with its runs' records; its jobs stay, for usage and audit."""
    pipeline = get(session, actor, project_name, name, Role.MEMBER)
    if _active_runs(session, pipeline.id):
        raise Conflict(f"pipeline {name!r} has active runs; cancel them first")
    session.delete(pipeline)
    audit.record(session, actor, "pipeline.delete", "pipeline", name, project=project_name)
    session.commit()


def copy(
    session: Session,
    settings: Settings,
    actor: Actor,
    project_name: str,
    name: str,
    new_name: str,
) -> PipelineModel:
    """A new pipeline with the spec of `name` under `new_name`."""
    source = get(session, actor, project_name, name, Role.MEMBER)
    project = projects.get_for(session, actor, project_name, Role.MEMBER)
    if _find(session, project.id, new_name) is not None:
        raise Conflict(f"pipeline {new_name!r} already exists in project {project_name!r}")
    copied, _ = apply(session, settings, actor, project_name, {**source.spec, "name": new_name})
    return copied


def set_paused(
    session: Session, actor: Actor, project_name: str, name: str, paused: bool
) -> PipelineModel:
    """Pause or resume the schedule; runs under way go on either way."""
    pipeline = get(session, actor, project_name, name, Role.MEMBER)
    pipeline.paused = paused
    audit.record(
        session,
        actor,
        "pipeline.pause" if paused else "pipeline.resume",
        "pipeline",
        name,
        project=project_name,
    )
    session.commit()
    return pipeline


def _active_runs(session: Session, pipeline_id: int) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(PipelineRunModel)
            .where(
                PipelineRunModel.pipeline_id == pipeline_id,
                PipelineRunModel.status.in_(RUN_ACTIVE),
            )
        )
        or 0
    )


def new_run(
    session: Session,
    pipeline: PipelineModel,
    user_id: int,
    trigger: RunTrigger,
    logical_date: datetime,
    now: datetime,
    *,
    tick: datetime | None = None,
    variables: dict[str, Any] | None = None,
    only: str | None = None,
) -> PipelineRunModel:
    """A QUEUED run of the pipeline's current spec, with a WAITING (or SKIPPED) task run per
    task; added to the session, not committed.

    With `only`, that task alone runs; its upstream tasks are skipped and lend it the outputs
    of their newest success in an earlier run, so that its references resolve.
    """
    spec = spec_of(pipeline)
    number = (
        session.scalar(
            select(func.max(PipelineRunModel.number)).where(
                PipelineRunModel.pipeline_id == pipeline.id
            )
        )
        or 0
    ) + 1
    run = PipelineRunModel(
        pipeline_id=pipeline.id,
        user_id=user_id,
        number=number,
        trigger=trigger,
        logical_date=logical_date,
        tick=tick,
        version=pipeline.version,
        spec=pipeline.spec,
        variables={**spec.globals, **(variables or {})},
        status=PipelineRunStatus.QUEUED,
        message="",
        created_at=now,
    )
    upstream = spec.upstream(only) if only is not None else set()
    for name in spec.order():
        status, message, outputs = TaskRunStatus.WAITING, "", None
        if only is not None and name != only:
            status, message = TaskRunStatus.SKIPPED, f"not run: the run is of {only} alone"
            if name in upstream:
                outputs = _last_outputs(session, pipeline.id, name)
        elif spec.tasks[name].skip:
            status, message = TaskRunStatus.SKIPPED, "skipped by the pipeline's spec"
        run.tasks.append(
            PipelineTaskRunModel(
                task=name,
                status=status,
                message=message,
                outputs=outputs,
                history=[{"status": status, "at": now.isoformat()}],
            )
        )
    session.add(run)
    return run


def _last_outputs(session: Session, pipeline_id: int, task: str) -> dict[str, Any] | None:
    return session.scalar(
        select(PipelineTaskRunModel.outputs)
        .join(PipelineRunModel, PipelineTaskRunModel.run_id == PipelineRunModel.id)
        .where(
            PipelineRunModel.pipeline_id == pipeline_id,
            PipelineTaskRunModel.task == task,
            PipelineTaskRunModel.status == TaskRunStatus.SUCCEEDED,
        )
        .order_by(PipelineTaskRunModel.id.desc())
        .limit(1)
    )


def trigger(
    session: Session,
    actor: Actor,
    project_name: str,
    name: str,
    *,
    logical_date: datetime | None = None,
    variables: dict[str, Any] | None = None,
    only: str | None = None,
) -> PipelineRunModel:
    """Queue a run now; `variables` override the pipeline's globals for this run only.
    `only` names one task to run alone, for debugging (see `new_run`)."""
    pipeline = get(session, actor, project_name, name, Role.MEMBER)
    spec = spec_of(pipeline)
    unknown = sorted(set(variables or {}) - set(spec.globals))
    if unknown:
        raise InvalidSpec(f"globals.{unknown[0]}: the pipeline has no such global")
    if only is not None and only not in spec.tasks:
        raise InvalidSpec(f"only: the pipeline has no task {only!r}")
    now = actor.now()
    run = new_run(
        session,
        pipeline,
        actor.user.id,
        RunTrigger.MANUAL,
        logical_date or now,
        now,
        variables=variables,
        only=only,
    )
    session.flush()
    audit.record(
        session,
        actor,
        "pipeline.run",
        "pipeline",
        f"{name} run {run.number}",
        project=project_name,
    )
    session.commit()
    return run


def backfill(
    session: Session, actor: Actor, project_name: str, name: str, start: datetime, end: datetime
) -> list[PipelineRunModel]:
    """A run for each schedule tick from `start` to `end` (both included) that has none yet;
    `max_active_runs` bounds how many run at once, oldest first."""
    pipeline = get(session, actor, project_name, name, Role.MEMBER)
    spec = spec_of(pipeline)
    if spec.schedule is None:
        raise InvalidSpec("schedule: backfill follows the pipeline's schedule; it has none")
    if end < start:
        raise InvalidSpec("end: must not be before start")
    ticks = pipeline_specs.ticks(spec.schedule.cron, start, end, MAX_BACKFILL + 1)
    if len(ticks) > MAX_BACKFILL:
        raise InvalidSpec(f"end: at most {MAX_BACKFILL} ticks at once; backfill in parts")
    existing = set(
        session.scalars(
            select(PipelineRunModel.tick).where(
                PipelineRunModel.pipeline_id == pipeline.id, PipelineRunModel.tick.in_(ticks)
            )
        )
    )
    now = actor.now()
    runs = [
        new_run(session, pipeline, actor.user.id, RunTrigger.BACKFILL, tick, now, tick=tick)
        for tick in ticks
        if tick not in existing
    ]
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise Conflict("another backfill or the schedule made some of these runs; retry") from None
    audit.record(
        session,
        actor,
        "pipeline.backfill",
        "pipeline",
        name,
        project=project_name,
        detail={"start": start.isoformat(), "end": end.isoformat(), "runs": len(runs)},
    )
    session.commit()
    return runs


def list_runs(
    session: Session, actor: Actor, project_name: str, name: str, limit: int = 100
) -> list[PipelineRunModel]:
    pipeline = get(session, actor, project_name, name)
    return list(
        session.scalars(
            select(PipelineRunModel)
            .where(PipelineRunModel.pipeline_id == pipeline.id)
            .order_by(PipelineRunModel.id.desc())
            .limit(limit)
        )
    )


def get_run(
    session: Session,
    actor: Actor,
    project_name: str,
    name: str,
    run_id: int,
    needs: Role = Role.VIEWER,
) -> PipelineRunModel:
    pipeline = get(session, actor, project_name, name, needs)
    run = session.get(PipelineRunModel, run_id)
    if run is None or run.pipeline_id != pipeline.id:
        raise NotFound(f"run {run_id} not found in pipeline {name!r}")
    return run


def _own_run(
    session: Session, actor: Actor, project_name: str, name: str, run_id: int
) -> PipelineRunModel:
    run = get_run(session, actor, project_name, name, run_id, Role.MEMBER)
    project = run.pipeline.project
    projects.require_own_or_owner(session, actor, project, run.user_id, "run")
    return run


def cancel(
    session: Session, actor: Actor, project_name: str, name: str, run_id: int
) -> PipelineRunModel:
    """Ask for the run to end: the scheduler's next pass stops its jobs and ends its tasks.
    Its user or a project owner may."""
    run = _own_run(session, actor, project_name, name, run_id)
    changed = rows_changed(
        session,
        update(PipelineRunModel)
        .where(
            PipelineRunModel.id == run.id,
            PipelineRunModel.status.in_((PipelineRunStatus.QUEUED, PipelineRunStatus.RUNNING)),
        )
        .values(status=PipelineRunStatus.CANCELLING, message=f"cancelled by {actor.name}"),
    )
    if changed:
        audit.record(
            session,
            actor,
            "pipeline.cancel",
            "pipeline",
            f"{name} run {run.number}",
            project=project_name,
        )
    session.commit()
    session.refresh(run)
    return run


def rerun(
    session: Session, actor: Actor, project_name: str, name: str, run_id: int
) -> PipelineRunModel:
    """Run an ended run again from the tasks that did not succeed; those that did keep their
    outputs and are not run again. Its user or a project owner may; the run then acts as
    whoever asked."""
    run = _own_run(session, actor, project_name, name, run_id)
    if run.status in RUN_ACTIVE:
        raise Conflict(f"run {run.id} is still {run.status}")
    if run.status == PipelineRunStatus.SUCCEEDED:
        raise Conflict(f"run {run.id} succeeded: nothing to run again; trigger a new run")
    now = actor.now()
    for task in run.tasks:
        if task.status not in TASK_DONE:
            transition(task, TaskRunStatus.WAITING, now, f"run again by {actor.name}")
            task.job_id = None
    run.status, run.ended_at = PipelineRunStatus.QUEUED, None
    run.message = f"run again by {actor.name}"
    run.user_id = actor.user.id
    audit.record(
        session,
        actor,
        "pipeline.rerun",
        "pipeline",
        f"{name} run {run.number}",
        project=project_name,
    )
    session.commit()
    return run


def transition(
    task: PipelineTaskRunModel, status: TaskRunStatus, now: datetime, message: str = ""
) -> None:
    """Move a task run to `status`, recording when in its history."""
    task.status = status
    task.message = messages.truncate(message)
    task.history = [*task.history, {"status": status, "at": now.isoformat()}]
    if status == TaskRunStatus.RUNNING:
        task.started_at, task.ended_at = now, None
    elif status in TASK_ENDED:
        task.ended_at = now


def next_tick(pipeline: PipelineModel, now: datetime) -> datetime | None:
    """When the schedule makes its next run; None without a schedule or while paused."""
    schedule = spec_of(pipeline).schedule
    if schedule is None or pipeline.paused:
        return None
    after = max(filter(None, (pipeline.last_tick, now)))
    start = schedule.start_date
    if start is not None and start > after:
        return pipeline_specs.ticks(schedule.cron, start, start + _YEARS, 1)[0]
    return pipeline_specs.ticks(schedule.cron, after + _TICK, after + _YEARS, 1)[0]
