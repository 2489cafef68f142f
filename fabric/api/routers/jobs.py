"""Jobs of a project, their logs, and the project's usage report."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, PlainTextResponse, StreamingResponse
from pydantic import AwareDatetime
from sqlalchemy.orm import Session

from fabric.api.deps import ActorDep, BackendDep, SessionDep, SettingsDep
from fabric.api.schemas.jobs import JobCreate, JobPublic, JobResultsPublic
from fabric.api.schemas.quotas import UsagePublic
from fabric.db.models import JobModel
from fabric.services.jobs import jobs
from fabric.services.jobs import results as job_results
from fabric.services.quotas import usage

router = APIRouter(prefix="/api/v1/projects/{project}", tags=["jobs"])


def _public(session: Session, job: JobModel) -> JobPublic:
    return JobPublic(
        id=job.id,
        name=job.name,
        user=job.user.username,
        status=job.status,
        message=job.message,
        queue_position=jobs.queue_position(session, job),
        entrypoint=job.entrypoint,
        template=job.template,
        params=job.params,
        resources=job.resources,
        workers=job.workers,
        worker_resources=job.worker_resources,
        requested=jobs.requested(job),
        pool=job.pool,
        timeout_seconds=job.timeout_seconds,
        max_retries=job.max_retries,
        attempt=job.attempt,
        submission_id=job.submission_id,
        created_at=job.created_at,
        started_at=job.started_at,
        ended_at=job.ended_at,
        retry_at=job.retry_at,
    )


@router.post("/jobs", status_code=201)
def submit_job(
    project: str,
    body: JobCreate,
    session: SessionDep,
    settings: SettingsDep,
    backend: BackendDep,
    actor: ActorDep,
) -> JobPublic:
    job = jobs.submit(session, settings, backend, actor, project, **body.model_dump())
    return _public(session, job)


@router.get("/jobs")
def list_jobs(
    project: str,
    session: SessionDep,
    actor: ActorDep,
    status: str | None = None,
    user: str | None = None,
    limit: int = Query(default=100, ge=1, le=1000),
) -> list[JobPublic]:
    found = jobs.list_for(session, actor, project, status=status, user=user, limit=limit)
    return [_public(session, job) for job in found]


@router.get("/jobs/{job_id}")
def get_job(project: str, job_id: int, session: SessionDep, actor: ActorDep) -> JobPublic:
    return _public(session, jobs.get(session, actor, project, job_id))


@router.post("/jobs/{job_id}/stop")
def stop_job(
    project: str, job_id: int, session: SessionDep, backend: BackendDep, actor: ActorDep
) -> JobPublic:
    return _public(session, jobs.stop(session, backend, actor, project, job_id))


@router.get("/jobs/{job_id}/logs", response_model=None)
def job_logs(
    request: Request,
    project: str,
    job_id: int,
    session: SessionDep,
    backend: BackendDep,
    actor: ActorDep,
    follow: bool = False,
) -> PlainTextResponse | StreamingResponse:
    """The job's output so far, or with `follow=true` streamed until the job ends."""
    if not follow:
        return PlainTextResponse(jobs.logs(session, backend, actor, project, job_id))
    job = jobs.get(session, actor, project, job_id)
    stream = jobs.follow_logs(request.app.state.sessionmaker, backend, project, job.id)
    return StreamingResponse(stream, media_type="text/plain")


@router.get("/jobs/{job_id}/outputs")
def job_outputs(
    project: str, job_id: int, session: SessionDep, settings: SettingsDep, actor: ActorDep
) -> JobResultsPublic:
    """What the job wrote to its outputs manifest, and every metric it reported so far."""
    found = job_results.results(session, settings, actor, project, job_id)
    return JobResultsPublic(outputs=found.outputs, metrics=found.metrics)


@router.get("/jobs/{job_id}/files/{path:path}")
def job_file(
    project: str,
    job_id: int,
    path: str,
    session: SessionDep,
    settings: SettingsDep,
    actor: ActorDep,
) -> FileResponse:
    """A file from the job's run folder, e.g. an image or a table its outputs name."""
    return FileResponse(job_results.file(session, settings, actor, project, job_id, path))


@router.get("/usage")
def usage_report(
    project: str,
    session: SessionDep,
    settings: SettingsDep,
    actor: ActorDep,
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
    group_by: str = "user",
) -> list[UsagePublic]:
    lines = usage.report(
        session, settings, actor, project, since=since, until=until, group_by=group_by
    )
    return [UsagePublic(**line.__dict__) for line in lines]
