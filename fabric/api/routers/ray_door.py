"""The Ray Jobs door: Ray's Jobs REST API at `/ray/{project}`, behind Fabric's auth and quotas.

`ray job submit --address http://HOST:8080/ray/PROJ --headers '{"Authorization": "Bearer
TOKEN"}'` and `JobSubmissionClient` work unchanged against it. Nothing is passed through to
Ray as it came: a submitted job becomes a Fabric job (admission, the queue, audit, metering),
a package becomes one of the project's packages, and every answer is built from Fabric's
records of the project's own jobs, so one project's door never shows another's work.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Request, WebSocket, WebSocketDisconnect
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from fabric.api.deps import (
    NO_TOKEN,
    BackendDep,
    ClientDep,
    ClockDep,
    SessionDep,
    SettingsDep,
    authenticate,
    get_actor,
)
from fabric.api.errors import PlainUnauthenticated
from fabric.api.schemas.jobs import JobCreate, PackagePublic
from fabric.api.uploads import receive_package
from fabric.auth.identity import client_address
from fabric.backends.ray_jobs import fabric_resources
from fabric.db.models import JobModel
from fabric.errors import Conflict, FabricError, InvalidSpec, Unauthenticated
from fabric.runtime import messages
from fabric.services.jobs import jobs, packages
from fabric.services.tenancy.actor import Actor
from fabric.states import JOB_ACTIVE, JobStatus

router = APIRouter(prefix="/ray/{project}", tags=["ray"])

# The revision of Ray's Jobs API that the door speaks (Ray's own CURRENT_VERSION).
JOBS_API_VERSION = "4"
PACKAGE_PROTOCOL = "gcs"
# Ray's job metadata carries what Ray's request has no field for: Fabric's field → its key.
METADATA = {
    "pool": "fabric_pool",
    "timeout_seconds": "fabric_timeout_seconds",
    "max_retries": "fabric_max_retries",
}
# What Ray's request calls Fabric's fields, for errors the user can act on.
RAY_NAMES = {
    "entrypoint": "entrypoint",
    "name": "submission_id",
    "runtime_env": "runtime_env",
    "resources": "entrypoint_resources",
    **{field: f"metadata.{key}" for field, key in METADATA.items()},
}


# Ray's tools are told to bring their own token (~/.ray/auth_token, RAY_AUTH_TOKEN) when a
# door refuses them; the door says what it takes instead.
TOKEN_HINT = (
    "the Ray door takes a Fabric API token (create one with `fabric token create NAME`): pass "
    """--headers '{"Authorization": "Bearer <Fabric API token>"}' to `ray job`; """
    "Ray's own token (~/.ray/auth_token, RAY_AUTH_TOKEN) is not used here"
)


def door_actor(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    client: ClientDep,
) -> Actor:
    """The caller, as for any route; refused with what Ray's tools must send instead."""
    try:
        return get_actor(request, session, settings, clock, client)
    except Unauthenticated as exc:
        reason = "" if exc.message == NO_TOKEN else f"{exc.message}; "
        raise PlainUnauthenticated(reason + TOKEN_HINT) from None


DoorActorDep = Annotated[Actor, Depends(door_actor)]


def _ray_name(loc: messages.Location) -> str:
    """The field of Ray's request that a problem with one of JobCreate's lies in."""
    return str(RAY_NAMES.get(str(loc[0])))


class RaySubmitRequest(BaseModel):
    """Ray's `JobSubmitRequest`, as `JobSubmissionClient.submit_job` sends it."""

    entrypoint: str = Field(max_length=10000)
    submission_id: str | None = None
    job_id: str | None = None
    runtime_env: dict[str, Any] | None = None
    metadata: dict[str, str] | None = None
    entrypoint_num_cpus: float | None = Field(default=None, ge=0)
    entrypoint_num_gpus: float | None = Field(default=None, ge=0)
    entrypoint_memory: int | None = Field(default=None, ge=0)
    entrypoint_resources: dict[str, float] | None = None
    entrypoint_label_selector: dict[str, str] | None = None

    def resources(self) -> dict[str, float] | None:
        """The request in Fabric's names and units; None leaves Fabric's default."""
        ray_units = {
            **(self.entrypoint_resources or {}),
            "CPU": self.entrypoint_num_cpus or 0,
            "GPU": self.entrypoint_num_gpus or 0,
            "memory": self.entrypoint_memory or 0,
        }
        asked = {name: amount for name, amount in fabric_resources([ray_units]).items() if amount}
        return asked or None

    def as_fabric_job(self) -> JobCreate:
        """Ray's request as Fabric's, held to the same rules as `POST .../jobs`."""
        if self.entrypoint_label_selector:
            raise InvalidSpec("entrypoint_label_selector: Fabric places jobs by pool; leave it out")
        metadata = self.metadata or {}
        try:
            # Ray's metadata holds strings: validated, so converted, as the fields' types.
            return JobCreate.model_validate(
                {
                    "entrypoint": self.entrypoint,
                    "name": self.submission_id or self.job_id,
                    "runtime_env": self.runtime_env or {},
                    "resources": self.resources(),
                    "pool": metadata.get(METADATA["pool"]),
                    "timeout_seconds": metadata.get(METADATA["timeout_seconds"]),
                    "max_retries": metadata.get(METADATA["max_retries"], 0),
                }
            )
        except ValidationError as exc:
            raise InvalidSpec(messages.describe(exc, _ray_name)) from None


def _millis(moment: datetime | None) -> int | None:
    return int(moment.timestamp() * 1000) if moment else None


def _details(job: JobModel) -> dict[str, Any]:
    """The job as Ray's `JobDetails`; a job queued by Fabric shows as PENDING with why."""
    queued = job.status == JobStatus.QUEUED
    return {
        "type": "SUBMISSION",
        "job_id": None,
        "submission_id": str(job.id),
        "driver_info": None,
        "status": JobStatus.PENDING if queued else job.status,
        "entrypoint": job.entrypoint,
        "message": f"queued by Fabric: {job.message}" if queued else job.message,
        "error_type": None,
        "start_time": _millis(job.started_at),
        "end_time": _millis(job.ended_at),
        "metadata": {
            "fabric_project": job.project.name,
            "fabric_job": str(job.id),
            "fabric_name": job.name,
            "fabric_user": job.user.username,
        },
        "runtime_env": job.runtime_env,
        "driver_agent_http_address": None,
        "driver_node_id": None,
        "driver_exit_code": None,
    }


@router.get("/api/version")
def version(project: str, backend: BackendDep, actor: DoorActorDep) -> dict:
    """The Jobs API's version, to any signed-in caller whatever the project: the one door
    route that checks no membership. To a 404 here Ray's client says only that the cluster
    runs no Jobs API, whatever the body, while a later request's error it prints with the
    body; so its next request says "project 'x' not found". The answer names only the
    server's Ray, the same for every name: it tells nobody whether a project exists."""
    return {
        "version": JOBS_API_VERSION,
        "ray_version": backend.version(),
        "ray_commit": "",
        "session_name": "",
    }


def _check_protocol(protocol: str) -> None:
    if protocol != PACKAGE_PROTOCOL:
        raise InvalidSpec(f"packages are uploaded as {PACKAGE_PROTOCOL}://, not {protocol}://")


@router.get("/api/packages/{protocol}/{name}")
def package_exists(
    project: str,
    protocol: str,
    name: str,
    session: SessionDep,
    settings: SettingsDep,
    actor: DoorActorDep,
) -> PackagePublic:
    _check_protocol(protocol)
    return PackagePublic.model_validate(packages.get(session, settings, actor, project, name))


@router.put("/api/packages/{protocol}/{name}")
async def upload_package(
    request: Request,
    project: str,
    protocol: str,
    name: str,
    session: SessionDep,
    settings: SettingsDep,
    actor: DoorActorDep,
) -> PackagePublic:
    _check_protocol(protocol)
    package = await receive_package(request, session, settings, actor, project, name)
    return PackagePublic.model_validate(package)


@router.post("/api/jobs/")
def submit_job(
    project: str,
    body: RaySubmitRequest,
    session: SessionDep,
    settings: SettingsDep,
    backend: BackendDep,
    actor: DoorActorDep,
) -> dict:
    request = body.as_fabric_job()
    if request.name is not None:
        jobs.check_name_free(session, actor, project, request.name)
    job = jobs.submit(session, settings, backend, actor, project, **request.model_dump())
    reference = request.name or str(job.id)
    return {"submission_id": reference, "job_id": reference}


@router.get("/api/jobs/")
def list_jobs(project: str, session: SessionDep, actor: DoorActorDep) -> list[dict]:
    return [_details(job) for job in jobs.list_for(session, actor, project, limit=1000)]


@router.get("/api/jobs/{ref}")
def get_job(project: str, ref: str, session: SessionDep, actor: DoorActorDep) -> dict:
    return _details(jobs.find(session, actor, project, ref))


@router.get("/api/jobs/{ref}/logs")
def job_logs(
    project: str, ref: str, session: SessionDep, backend: BackendDep, actor: DoorActorDep
) -> dict:
    job = jobs.find(session, actor, project, ref)
    return {"logs": jobs.logs(session, backend, actor, project, job.id)}


@router.post("/api/jobs/{ref}/stop")
def stop_job(
    project: str, ref: str, session: SessionDep, backend: BackendDep, actor: DoorActorDep
) -> dict:
    job = jobs.find(session, actor, project, ref)
    was_active = job.status in JOB_ACTIVE
    jobs.stop(session, backend, actor, project, job.id)
    return {"stopped": was_active}


@router.delete("/api/jobs/{ref}")
def delete_job(project: str, ref: str, session: SessionDep, actor: DoorActorDep) -> dict:
    jobs.find(session, actor, project, ref)
    raise Conflict("Fabric keeps every job's record for usage and audit; jobs are not deleted")


def _authorized_job(websocket: WebSocket, project: str, ref: str) -> int:
    state = websocket.app.state
    with state.sessionmaker() as session:
        peer = websocket.client.host if websocket.client else ""
        headers = dict(websocket.headers)
        client = client_address(state.settings, peer, headers.get("x-forwarded-for"))
        actor = authenticate(session, state.settings, state.clock, client, peer, headers)
        return jobs.find(session, actor, project, ref).id


@router.websocket("/api/jobs/{ref}/logs/tail")
async def tail_job_logs(websocket: WebSocket, project: str, ref: str) -> None:
    """The job's output as text messages until it ends, then a normal close."""
    try:
        job_id = await run_in_threadpool(_authorized_job, websocket, project, ref)
    except FabricError as exc:
        await websocket.close(code=1008, reason=exc.message[:120])
        return
    await websocket.accept()
    state = websocket.app.state
    stream = jobs.follow_logs(state.sessionmaker, state.backend, project, job_id)

    async def pump(cancel: anyio.CancelScope) -> None:
        try:
            while (chunk := await run_in_threadpool(next, stream, None)) is not None:
                if chunk:
                    await websocket.send_text(chunk)
            await websocket.close()
        except WebSocketDisconnect:
            pass
        cancel.cancel()

    async with anyio.create_task_group() as group:
        group.start_soon(pump, group.cancel_scope)
        # The client's close ends the tail; the log stream stops at its next poll.
        while (await websocket.receive())["type"] != "websocket.disconnect":
            pass
        group.cancel_scope.cancel()
