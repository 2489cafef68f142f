"""Jobs: admitted against quota, submitted to Ray, queued when they may fit later.

A request that can never fit (a `single` limit, or one it exceeds on its own) is refused at
once; one that may fit when other work ends waits as QUEUED, and so does any request of a
project whose queue is not empty: the reconciler (`job_sync`) starts each project's queue in
order. No network call happens inside a database transaction: admission commits, then Ray is
called, then the outcome is stored.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from fabric import names, runtime, storage
from fabric.backends.base import BackendError, ClusterStarting, ComputeBackend, JobSpec, Runner
from fabric.config import Settings
from fabric.db.dml import rows_changed
from fabric.db.models import AllocationModel, JobModel, ProjectModel
from fabric.errors import Conflict, InvalidSpec, NotFound, QuotaExceeded
from fabric.runtime import environment, messages
from fabric.services.jobs import packages, runtime_envs
from fabric.services.quotas import admission as allocations
from fabric.services.templates import builtin as templates
from fabric.services.templates import custom as custom_templates
from fabric.services.tenancy import audit, projects, tokens
from fabric.services.tenancy.actor import Actor
from fabric.services.tenancy.roles import Role
from fabric.states import JOB_ACTIVE, JobStatus

DEFAULT_RESOURCES = {"cpu": 1.0}


def submit(
    session: Session,
    settings: Settings,
    backend: ComputeBackend,
    actor: Actor,
    project_name: str,
    **request: Any,
) -> JobModel:
    """Admit and start a job (see `create` for the request); it waits as QUEUED when it must."""
    job = create(session, settings, backend, actor, project_name, **request)
    session.commit()
    if job.status == JobStatus.PENDING:
        start(session, settings, backend, actor, job)
    return job


def create(
    session: Session,
    settings: Settings,
    backend: ComputeBackend,
    actor: Actor,
    project_name: str,
    *,
    entrypoint: str | None = None,
    template: str | None = None,
    params: dict[str, Any] | None = None,
    name: str | None = None,
    runtime_env: dict[str, Any] | None = None,
    resources: dict[str, float] | None = None,
    workers: int | None = None,
    worker_resources: dict[str, float] | None = None,
    pool: str | None = None,
    timeout_seconds: float | None = None,
    max_retries: int = 0,
    warm: bool | None = False,
) -> JobModel:
    """Check and admit a job that runs `entrypoint`, or `template` with `params`, and add its
    row, uncommitted: the caller commits it with whatever else must record it (a pipeline's
    task), then starts it if it was admitted (PENDING).

    `resources` are the driver's; `workers` more Ray workers (Train, Tune) each hold
    `worker_resources`. A template fills in whichever the request leaves out. A `warm` job
    runs on the warm runner instead of as a Ray Job of its own; None: warm if it starts no
    workers (a light one).
    """
    project = projects.get_for(session, actor, project_name, Role.MEMBER)
    work = _prepare(
        session,
        settings,
        actor,
        project.name,
        entrypoint=entrypoint,
        template=template,
        params=params,
        runtime_env=runtime_env,
        resources=resources,
        workers=workers,
        worker_resources=worker_resources,
    )
    _check(settings, project.name, work, name)
    job = JobModel(
        project_id=project.id,
        user_id=actor.user.id,
        name=name or f"job-{uuid.uuid4().hex[:8]}",
        entrypoint=work.entrypoint,
        template=work.template,
        params=work.params,
        runtime_env=work.runtime_env,
        resources=work.resources,
        workers=work.workers,
        worker_resources=work.worker_resources,
        pool=pool,
        timeout_seconds=timeout_seconds,
        max_retries=max_retries,
        runner=_runner(warm, work.workers, "py_executable" in work.runtime_env),
        status=JobStatus.QUEUED,
        created_at=actor.now(),
    )
    _fits_a_node(session, backend, actor, project, job)
    allocation = _admit(session, actor, project, job)
    _record(session, actor, project, job, allocation)
    return job


@dataclass(frozen=True)
class _Work:
    """What a job runs and what it holds on the cluster, its template's part filled in."""

    entrypoint: str
    template: str | None
    params: dict[str, Any] | None
    runtime_env: dict[str, Any]
    resources: dict[str, float]
    workers: int
    worker_resources: dict[str, float]


def _prepare(
    session: Session,
    settings: Settings,
    actor: Actor,
    project_name: str,
    *,
    entrypoint: str | None,
    template: str | None,
    params: dict[str, Any] | None,
    runtime_env: dict[str, Any] | None,
    resources: dict[str, float] | None,
    workers: int | None,
    worker_resources: dict[str, float] | None,
) -> _Work:
    """The request made concrete: a template's command, params and runtime env, and its
    resources and workers where the request leaves them out; then the defaults."""
    either = "give either entrypoint (a command) or template (with params), not both"
    if template is not None:
        if entrypoint is not None:
            raise InvalidSpec(either)
        if custom_templates.is_reference(template):
            prepared = custom_templates.prepare(
                session, settings, actor, project_name, template, params or {}
            )
        else:
            prepared = templates.prepare(settings, template, params or {})
        entrypoint, params, template = prepared.entrypoint, prepared.params, prepared.reference
        runtime_env = runtime_envs.merge(prepared.runtime_env, runtime_env or {})
        resources = resources or prepared.resources
        workers = prepared.workers if workers is None else workers
        if workers and not worker_resources:
            worker_resources = prepared.worker_resources
    elif entrypoint is None:
        raise InvalidSpec(either)
    elif params:
        raise InvalidSpec("params go with a template; an entrypoint takes its own arguments")
    if workers:
        worker_resources = worker_resources or dict(DEFAULT_RESOURCES)
    return _Work(
        entrypoint=entrypoint,
        template=template,
        params=params if template is not None else None,
        runtime_env=runtime_env or {},
        resources=resources or dict(DEFAULT_RESOURCES),
        workers=workers or 0,
        worker_resources=worker_resources or {},
    )


def _check(settings: Settings, project_name: str, work: _Work, name: str | None) -> None:
    """Refuse a job that cannot run as asked: InvalidSpec with what to change."""
    if not work.entrypoint.strip():
        raise InvalidSpec("entrypoint must be a command, e.g. 'python train.py'")
    if name is not None and not names.JOB_NAME.match(name):
        raise InvalidSpec("name: letters, digits, '_', '.', '-', at most 100 characters")
    runtime_envs.check(settings, project_name, work.runtime_env)
    allocations.check_resources(work.resources)
    if work.workers:
        allocations.check_resources(work.worker_resources)
    elif work.worker_resources:
        raise InvalidSpec("worker_resources go with workers; this job starts none")


def _fits_a_node(
    session: Session, backend: ComputeBackend, actor: Actor, project: ProjectModel, job: JobModel
) -> None:
    """Refuse at once what no node of the cluster can hold: Ray would leave it PENDING for
    ever, holding its quota. A QuotaExceeded that will never fit; a quota that refuses it for
    good speaks first, as the limit the user was given."""
    try:
        sizes = backend.node_sizes(project.name, job.pool)
    except BackendError:
        return  # down or starting: submitting the job says so
    parts = [("the job's driver", job.resources)]
    if job.workers:
        parts.append(("each of its workers", job.worker_resources))
    for part, needs in parts:
        if sizes and not any(_holds(size, needs) for size in sizes):
            _refuse_if_never_admitted(session, actor, project, job)
            largest = max(sizes, key=lambda size: (size.get("cpu", 0.0), size.get("gpu", 0.0)))
            raise QuotaExceeded(
                f"{part} asks for {_amounts(needs)}, more than any node of the cluster has "
                f"(the largest: {_amounts(largest)}); Ray runs it on one node, so ask for less",
                may_fit_later=False,
            )


def _refuse_if_never_admitted(
    session: Session, actor: Actor, project: ProjectModel, job: JobModel
) -> None:
    try:
        _check_quota(session, actor, project, job)
    except QuotaExceeded as exc:
        if not exc.may_fit_later:
            raise


def _check_quota(session: Session, actor: Actor, project: ProjectModel, job: JobModel) -> None:
    """QuotaExceeded when the quota would refuse the job now; admits nothing."""
    allocations.check(
        session,
        actor,
        project.name,
        resources=requested(job),
        pool=job.pool,
        expected_seconds=job.timeout_seconds,
    )


def _holds(size: dict[str, float], needs: dict[str, float]) -> bool:
    return all(amount <= size.get(name, 0.0) + 1e-9 for name, amount in needs.items() if amount)


def _amounts(resources: dict[str, float]) -> str:
    return ", ".join(
        f"{name} {amount:.1f} GiB" if name == "memory" else f"{name} {amount:g}"
        for name, amount in sorted(resources.items())
    )


def _runner(warm: bool | None, workers: int, own_python: bool = False) -> Runner:
    """The warm runner when asked for, or when left open (None) for a job that starts no
    workers: a job with workers is a Ray Job of its own, and so is one in a Python of its
    own (`py_executable`: the warm runner runs in the cluster's)."""
    if warm is None:
        warm = not workers and not own_python
    elif warm and workers:
        raise InvalidSpec("warm: a job with workers runs as a Ray Job of its own")
    elif warm and own_python:
        raise InvalidSpec("warm: a job in another Python environment runs as a Ray Job of its own")
    return Runner.WARM if warm else Runner.RAY_JOB


def _record(
    session: Session,
    actor: Actor,
    project: ProjectModel,
    job: JobModel,
    allocation: AllocationModel | None,
) -> None:
    """Add the job's row, admitted or waiting for quota, and audit its submission."""
    session.add(job)
    if allocation is None:
        job.message = "waiting for quota"
    else:
        # Admitted: PENDING from now on, so the reconciler never starts it a second time.
        job.status = JobStatus.PENDING
        job.allocation_id = allocation.id
    session.flush()
    audit.record(
        session,
        actor,
        "job.submit",
        "job",
        f"{job.id} {job.name}",
        project=project.name,
        detail={"resources": requested(job), "queued": allocation is None}
        | ({"template": job.template} if job.template else {}),
    )


def _admit(
    session: Session, actor: Actor, project: ProjectModel, job: JobModel
) -> AllocationModel | None:
    """The job's allocation, or None when it must queue; QuotaExceeded when it never fits.

    It queues when it may fit later, and also when its project already has queued jobs:
    those go first, however small the newcomer.
    """
    try:
        if _has_queued(session, project.id):
            _check_quota(session, actor, project, job)
            return None
        return admit(session, actor, job, project.name)
    except QuotaExceeded as exc:
        if exc.may_fit_later:
            return None
        raise


def admit(session: Session, actor: Actor, job: JobModel, project_name: str) -> AllocationModel:
    """An allocation for the job's request now; QuotaExceeded when the quota refuses it.

    The project comes by name: a job being submitted is not in the session yet.
    """
    return allocations.admit(
        session,
        actor,
        project_name,
        resources=requested(job),
        pool=job.pool,
        purpose=f"job {job.name}",
        expected_seconds=job.timeout_seconds,
        # Billed from its start on the cluster (see `started`): not while it waits there.
        metered_now=False,
    )


def started(session: Session, job: JobModel, at: datetime) -> None:
    """Record that the job runs on the cluster since `at`, and meter its allocation from
    then; the caller commits. A retried job keeps its first start."""
    if job.started_at is None:
        job.started_at = at
    if job.allocation_id is not None:
        allocations.start_metering(session, job.allocation_id, at)


def requested(job: JobModel) -> dict[str, float]:
    """What the job holds on the cluster: its driver's resources and all its workers'."""
    return total(job.resources, job.workers, job.worker_resources)


def total(
    resources: dict[str, float], workers: int, worker_resources: dict[str, float]
) -> dict[str, float]:
    """A driver's resources plus `workers` times each worker's."""
    found = dict(resources)
    for name, amount in worker_resources.items():
        found[name] = found.get(name, 0.0) + workers * amount
    return found


def _has_queued(session: Session, project_id: int) -> bool:
    return (
        session.scalar(
            select(JobModel.id)
            .where(JobModel.project_id == project_id, JobModel.status == JobStatus.QUEUED)
            .limit(1)
        )
        is not None
    )


def start(
    session: Session, settings: Settings, backend: ComputeBackend, actor: Actor, job: JobModel
) -> None:
    """Submit the job's next attempt to Ray; on failure the job ends FAILED with Ray's reason."""
    run_dir = _folders(settings, job)
    token_file = _write_token(session, actor, job, run_dir)
    try:
        runtime_env = _hand_code(settings, backend, job)
    except ClusterStarting as exc:
        _wait_for_cluster(session, settings, actor, job, exc)
        return
    except (NotFound, BackendError) as exc:
        message = f"cannot hand the job's code to Ray: {exc}"
        finish(session, actor, job, JobStatus.FAILED, message)
        return
    env_vars = _environment(settings, job, run_dir, token_file)
    try:
        job.submission_id = backend.submit_job(job.project.name, _spec(job, runtime_env, env_vars))
    except ClusterStarting as exc:
        _wait_for_cluster(session, settings, actor, job, exc)
        return
    except BackendError as exc:
        finish(session, actor, job, JobStatus.FAILED, f"Ray refused the job: {exc}")
        return
    job.attempt += 1
    job.status = JobStatus.PENDING
    job.message = ""
    session.commit()


def _folders(settings: Settings, job: JobModel) -> Path:
    """Make the job's user folder and run folder; the run folder."""
    run_dir = storage.run_dir(settings, job.project.name, job.id)
    for folder in (storage.user_dir(settings, job.user.username), run_dir):
        folder.mkdir(parents=True, exist_ok=True)
    return run_dir


def _write_token(session: Session, actor: Actor, job: JobModel, run_dir: Path) -> Path:
    """Issue the job's token, for its timeout (or a day) and an hour more; the file it is in.

    In a file readable by its owner only, not in the environment: Ray keeps a job's runtime
    env in its job info, which others can read.
    """
    lifetime = timedelta(seconds=(job.timeout_seconds or 86400) + 3600)
    token = tokens.issue_job_token(session, job.user, _token_name(job), actor.clock, lifetime)
    session.commit()
    token_file = run_dir / ".job_token"
    fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token.secret)
    return token_file


def _environment(
    settings: Settings, job: JobModel, run_dir: Path, token_file: Path
) -> dict[str, str]:
    """The job's own variables and Fabric's, which tell it where it runs (fabric.runtime)."""
    project = job.project.name
    return {
        **job.runtime_env.get("env_vars", {}),
        environment.URL: settings.local_url,
        environment.PROJECT: project,
        environment.JOB_ID: str(job.id),
        environment.USER_DIR: str(storage.user_dir(settings, job.user.username)),
        environment.PROJECT_DIR: str(storage.project_dir(settings, project)),
        environment.RUN_DIR: str(run_dir),
        environment.JOB_TOKEN_FILE: str(token_file),
        environment.WORKERS: json.dumps({"count": job.workers, "resources": job.worker_resources}),
    }


def _hand_code(settings: Settings, backend: ComputeBackend, job: JobModel) -> dict[str, Any]:
    """The job's runtime env as its cluster takes it, with its code packages put there."""
    project = job.project.name
    runtime_env, needed = packages.for_cluster(settings, project, job.runtime_env)
    for uri, path in needed.items():
        backend.ensure_package(project, uri, path)
    return runtime_env


def _spec(job: JobModel, runtime_env: dict[str, Any], env_vars: dict[str, str]) -> JobSpec:
    """The attempt as the backend runs it: resources in Ray's terms, Fabric's ids as metadata."""
    project = job.project.name
    resources = dict(job.resources)
    return JobSpec(
        submission_id=f"fabric-{project}-{job.id}-{job.attempt + 1}-{uuid.uuid4().hex[:6]}",
        entrypoint=job.entrypoint,
        runtime_env={**runtime_env, "env_vars": env_vars},
        cpu=resources.pop("cpu", 0.0),
        memory_gib=resources.pop("memory", 0.0),
        gpu=resources.pop("gpu", 0.0),
        custom_resources=runtime.ray_resources(resources),
        metadata={
            "fabric_project": project,
            "fabric_job": str(job.id),
            "fabric_user": job.user.username,
        },
        pool=job.pool,
        runner=Runner(job.runner),
        # The job's own folder, so that files it makes with relative paths stay its own;
        # code brought as a working_dir runs where Ray unpacked it.
        cwd=None if "working_dir" in runtime_env else env_vars[environment.RUN_DIR],
    )


def _wait_for_cluster(
    session: Session, settings: Settings, actor: Actor, job: JobModel, exc: ClusterStarting
) -> None:
    """Leave the admitted job to a later pass (see job_sync): its cluster is coming up."""
    tokens.revoke_job_tokens(session, job.user_id, _token_name(job), actor.clock)
    job.retry_at = actor.now() + timedelta(seconds=settings.cluster_poll_seconds)
    job.message = messages.truncate(str(exc))
    session.commit()


def _token_name(job: JobModel) -> str:
    return f"job-{job.id}"


def finish(session: Session, actor: Actor, job: JobModel, status: JobStatus, message: str) -> None:
    """End the job once: record how, meter its allocation, revoke its token.

    A user's stop and the reconciler may both try; the first to change the row wins and the
    other leaves the job as it found it. Status, metering and the token's end commit together
    under the project's lock: whoever sees the job ended sees its usage too.
    """
    allocations.lock_project(session, job.project_id)
    ended = rows_changed(
        session,
        update(JobModel)
        .where(JobModel.id == job.id, JobModel.status.in_(JOB_ACTIVE))
        .values(status=status, message=messages.truncate(message), ended_at=actor.now()),
    )
    session.refresh(job)
    if ended == 0:
        session.rollback()
        return
    tokens.revoke_job_tokens(session, job.user_id, _token_name(job), actor.clock)
    audit.record(
        session,
        actor,
        "job.end",
        "job",
        f"{job.id} {job.name}",
        project=job.project.name,
        detail={"status": status},
    )
    if job.allocation_id is not None:
        allocation = session.get(AllocationModel, job.allocation_id)
        if allocation is not None:
            allocations.meter(session, actor, job.project, allocation)
    session.commit()


def _in_project(session: Session, project: ProjectModel, job_id: int) -> JobModel:
    job = session.get(JobModel, job_id)
    if job is None or job.project_id != project.id:
        raise NotFound(f"job {job_id} not found in project {project.name!r}")
    return job


def get(session: Session, actor: Actor, project_name: str, job_id: int) -> JobModel:
    return _in_project(session, projects.get_for(session, actor, project_name), job_id)


def list_for(
    session: Session,
    actor: Actor,
    project_name: str,
    *,
    status: str | None = None,
    user: str | None = None,
    limit: int = 100,
) -> list[JobModel]:
    project = projects.get_for(session, actor, project_name)
    stmt = select(JobModel).where(JobModel.project_id == project.id)
    if status is not None:
        stmt = stmt.where(JobModel.status == status.upper())
    if user is not None:
        stmt = stmt.join(JobModel.user).where(JobModel.user.has(username=user))
    return list(session.scalars(stmt.order_by(JobModel.id.desc()).limit(limit)))


def queue_position(session: Session, job: JobModel) -> int | None:
    """Where a queued job waits in its project's queue (1 is next); None when not queued."""
    if job.status != JobStatus.QUEUED:
        return None
    ahead = session.scalar(
        select(func.count())
        .select_from(JobModel)
        .where(
            JobModel.project_id == job.project_id,
            JobModel.status == JobStatus.QUEUED,
            JobModel.id < job.id,
        )
    )
    return (ahead or 0) + 1


def stop(
    session: Session, backend: ComputeBackend, actor: Actor, project_name: str, job_id: int
) -> JobModel:
    """Stop a job: its user or a project owner may."""
    project = projects.get_for(session, actor, project_name, Role.MEMBER)
    job = _in_project(session, project, job_id)
    projects.require_own_or_owner(session, actor, project, job.user_id, "job")
    if job.status not in JOB_ACTIVE:
        return job
    halt(session, backend, actor, job, f"stopped by {actor.name}")
    return job


def halt(
    session: Session, backend: ComputeBackend, actor: Actor, job: JobModel, message: str
) -> None:
    """Stop the job on Ray if it reached Ray, and end it STOPPED with `message`."""
    if job.submission_id is not None:
        backend.stop_job(job.project.name, job.submission_id)
    finish(session, actor, job, JobStatus.STOPPED, message)


def logs(
    session: Session, backend: ComputeBackend, actor: Actor, project_name: str, job_id: int
) -> str:
    job = get(session, actor, project_name, job_id)
    if job.submission_id is None:
        return ""
    return backend.job_logs(project_name, job.submission_id)


def follow_logs(
    sessions: sessionmaker[Session],
    backend: ComputeBackend,
    project_name: str,
    job_id: int,
    interval: float = 0.2,
) -> Iterator[str]:
    """Stream the job's output until its record says it ended, attempt after attempt.

    It waits while the job is queued and between retries, and ends only once the job's row
    is final, so whoever reads the status next sees the end the stream showed. An empty
    string after each idle poll lets the consumer notice a client that went away. It opens
    its own sessions: it runs after the request that asked for it has returned; the caller
    checks access before handing it out.
    """
    followed: str | None = None
    while True:
        with sessions() as session:
            job = session.get(JobModel, job_id)
            if job is None:
                return
            submission_id, active = job.submission_id, job.status in JOB_ACTIVE
        if submission_id is not None and submission_id != followed:
            yield from backend.follow_job_logs(project_name, submission_id)
            followed = submission_id
        elif not active:
            return
        else:
            yield ""
            time.sleep(interval)


def find(session: Session, actor: Actor, project_name: str, ref: str) -> JobModel:
    """A job by its id, or by its name (the newest of that name): how Ray's tools name jobs."""
    project = projects.get_for(session, actor, project_name)
    if ref.isdigit():
        return _in_project(session, project, int(ref))
    job = session.scalar(
        select(JobModel)
        .where(JobModel.project_id == project.id, JobModel.name == ref)
        .order_by(JobModel.id.desc())
        .limit(1)
    )
    if job is None:
        raise NotFound(f"job {ref!r} not found in project {project_name!r}")
    return job


def check_name_free(session: Session, actor: Actor, project_name: str, name: str) -> None:
    """Ray refuses a second job under one submission id; the door keeps that promise."""
    project = projects.get_for(session, actor, project_name)
    taken = session.scalar(
        select(JobModel.id).where(JobModel.project_id == project.id, JobModel.name == name)
    )
    if taken is not None or name.isdigit():
        raise Conflict(f"submission id {name!r} is already used in project {project_name!r}")
