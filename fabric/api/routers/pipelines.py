"""A project's pipelines: apply a spec, run it, backfill its schedule, follow and cancel runs."""

from __future__ import annotations

from typing import Any

import yaml
from fastapi import APIRouter, Body, Response
from fastapi.responses import PlainTextResponse
from sqlalchemy.orm import Session

from fabric.api.deps import ActorDep, SessionDep, SettingsDep
from fabric.api.schemas.pipelines import (
    PipelineBackfill,
    PipelineCopy,
    PipelinePublic,
    PipelineRunCreate,
    PipelineRunPublic,
    PipelineUpdate,
    TaskRunPublic,
)
from fabric.config import Settings
from fabric.db.models import JobModel, PipelineModel, PipelineRunModel
from fabric.errors import InvalidSpec
from fabric.services.jobs import results as job_results
from fabric.services.pipelines import pipelines
from fabric.services.tenancy.actor import Actor

router = APIRouter(prefix="/api/v1/projects/{project}/pipelines", tags=["pipelines"])


def _public(pipeline: PipelineModel, actor: Actor) -> PipelinePublic:
    return PipelinePublic(
        name=pipeline.name,
        version=pipeline.version,
        description=pipeline.spec.get("description", ""),
        user=pipeline.user.username,
        paused=pipeline.paused,
        spec=pipeline.spec,
        next_tick=pipelines.next_tick(pipeline, actor.now()),
        created_at=pipeline.created_at,
        updated_at=pipeline.updated_at,
    )


def _run_public(session: Session, settings: Settings, run: PipelineRunModel) -> PipelineRunPublic:
    project = run.pipeline.project.name
    tasks = []
    for task in run.tasks:
        job = session.get(JobModel, task.job_id) if task.job_id is not None else None
        tasks.append(
            TaskRunPublic(
                task=task.task,
                status=task.status,
                message=task.message,
                job_id=task.job_id,
                job_status=job.status if job is not None else None,
                logs=f"/api/v1/projects/{project}/jobs/{job.id}/logs" if job else None,
                params=task.params,
                outputs=task.outputs,
                results=job_results.present(settings, project, job.id, task.outputs)
                if job is not None and task.outputs is not None
                else None,
                history=task.history,
                started_at=task.started_at,
                ended_at=task.ended_at,
            )
        )
    return PipelineRunPublic(
        id=run.id,
        pipeline=run.pipeline.name,
        number=run.number,
        trigger=run.trigger,
        logical_date=run.logical_date,
        version=run.version,
        variables=run.variables,
        user=run.user.username,
        status=run.status,
        message=run.message,
        created_at=run.created_at,
        started_at=run.started_at,
        ended_at=run.ended_at,
        tasks=tasks,
    )


@router.put("/{name}")
def apply_pipeline(
    project: str,
    name: str,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    actor: ActorDep,
    spec: dict[str, Any] = Body(description="the pipeline: tasks, globals, limits, schedule"),
) -> PipelinePublic:
    """Create the pipeline (201) or replace its spec with a new version (200)."""
    if spec.setdefault("name", name) != name:
        raise InvalidSpec(f"name: the spec says {spec['name']!r}, the address {name!r}")
    pipeline, created = pipelines.apply(session, settings, actor, project, spec)
    response.status_code = 201 if created else 200
    return _public(pipeline, actor)


@router.get("")
def list_pipelines(project: str, session: SessionDep, actor: ActorDep) -> list[PipelinePublic]:
    return [_public(p, actor) for p in pipelines.list_for(session, actor, project)]


@router.get("/{name}")
def get_pipeline(project: str, name: str, session: SessionDep, actor: ActorDep) -> PipelinePublic:
    return _public(pipelines.get(session, actor, project, name), actor)


@router.get("/{name}/export", response_class=PlainTextResponse)
def export_pipeline(
    project: str, name: str, session: SessionDep, actor: ActorDep
) -> PlainTextResponse:
    """The spec as YAML, ready for `fabric pipeline apply -f`."""
    spec = pipelines.get(session, actor, project, name).spec
    text = yaml.safe_dump(spec, sort_keys=False, allow_unicode=True)
    return PlainTextResponse(text, media_type="application/yaml")


@router.patch("/{name}")
def update_pipeline(
    project: str, name: str, body: PipelineUpdate, session: SessionDep, actor: ActorDep
) -> PipelinePublic:
    """Pause or resume the schedule."""
    return _public(pipelines.set_paused(session, actor, project, name, body.paused), actor)


@router.delete("/{name}", status_code=204)
def delete_pipeline(project: str, name: str, session: SessionDep, actor: ActorDep) -> None:
    pipelines.delete(session, actor, project, name)


@router.post("/{name}/copy", status_code=201)
def copy_pipeline(
    project: str,
    name: str,
    body: PipelineCopy,
    session: SessionDep,
    settings: SettingsDep,
    actor: ActorDep,
) -> PipelinePublic:
    copied = pipelines.copy(session, settings, actor, project, name, body.name)
    return _public(copied, actor)


@router.post("/{name}/runs", status_code=201)
def run_pipeline(
    project: str,
    name: str,
    body: PipelineRunCreate,
    session: SessionDep,
    settings: SettingsDep,
    actor: ActorDep,
) -> PipelineRunPublic:
    run = pipelines.trigger(
        session,
        actor,
        project,
        name,
        logical_date=body.logical_date,
        variables=body.globals,
        only=body.only,
    )
    return _run_public(session, settings, run)


@router.post("/{name}/backfill", status_code=201)
def backfill_pipeline(
    project: str,
    name: str,
    body: PipelineBackfill,
    session: SessionDep,
    settings: SettingsDep,
    actor: ActorDep,
) -> list[PipelineRunPublic]:
    """A run for each schedule tick from start to end that has none yet."""
    runs = pipelines.backfill(session, actor, project, name, body.start, body.end)
    return [_run_public(session, settings, run) for run in runs]


@router.get("/{name}/runs")
def list_runs(
    project: str, name: str, session: SessionDep, settings: SettingsDep, actor: ActorDep
) -> list[PipelineRunPublic]:
    return [
        _run_public(session, settings, r)
        for r in pipelines.list_runs(session, actor, project, name)
    ]


@router.get("/{name}/runs/{run_id}")
def get_run(
    project: str,
    name: str,
    run_id: int,
    session: SessionDep,
    settings: SettingsDep,
    actor: ActorDep,
) -> PipelineRunPublic:
    return _run_public(session, settings, pipelines.get_run(session, actor, project, name, run_id))


@router.post("/{name}/runs/{run_id}/cancel")
def cancel_run(
    project: str,
    name: str,
    run_id: int,
    session: SessionDep,
    settings: SettingsDep,
    actor: ActorDep,
) -> PipelineRunPublic:
    """Cancel the run: its running jobs are stopped and its tasks end CANCELLED."""
    return _run_public(session, settings, pipelines.cancel(session, actor, project, name, run_id))


@router.post("/{name}/runs/{run_id}/rerun")
def rerun_run(
    project: str,
    name: str,
    run_id: int,
    session: SessionDep,
    settings: SettingsDep,
    actor: ActorDep,
) -> PipelineRunPublic:
    """Run an ended run again from the tasks that did not succeed."""
    return _run_public(session, settings, pipelines.rerun(session, actor, project, name, run_id))
