"""Service-level factories: a database of a test's own, the stack's compute backend, users
and projects made through the services, and reconcilers whose passes the test runs itself."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from fabric.backends.base import ClusterStarting, ComputeBackend, JobSpec
from fabric.background.reconciler import Reconciler
from fabric.clock import FrozenClock
from fabric.config import Settings
from fabric.db.models import AllocationModel, JobModel, UserModel
from fabric.services.jobs import jobs
from fabric.services.quotas import admission as allocations
from fabric.services.quotas import limits
from fabric.services.tenancy import projects
from fabric.services.tenancy.actor import Actor
from fabric.states import JOB_ACTIVE


class ServerDied(Exception):
    """Stands for a server that stopped in the middle of a request."""


@dataclass
class RecordingBackend:
    """The stack's backend, recording each submission; it can die in one, or let a test act
    while one is under way."""

    inner: ComputeBackend
    submitted: list[str] = field(default_factory=list)
    die_in_next_submit: bool = False
    # Submits answered "the project's cluster is starting", as KubeRay's backend answers.
    starting_for_submits: int = 0
    during_next_submit: Callable[[], None] | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def submit_job(self, project: str, spec: JobSpec) -> str:
        if self.die_in_next_submit:
            self.die_in_next_submit = False
            raise ServerDied
        if self.starting_for_submits:
            self.starting_for_submits -= 1
            raise ClusterStarting(
                f"the Ray cluster of project {project!r} is starting: no head pod yet"
            )
        if self.during_next_submit is not None:
            during, self.during_next_submit = self.during_next_submit, None
            during()
        self.submitted.append(spec.submission_id)
        return self.inner.submit_job(project, spec)


@dataclass(frozen=True)
class Owner:
    actor: Actor
    project: str


@dataclass
class World:
    settings: Settings
    sessions: sessionmaker[Session]
    backend: RecordingBackend
    clock: FrozenClock
    admin: Actor

    def project(self, *, cpu: float) -> Owner:
        """A new project with a concurrent cpu quota, and its owner."""
        with self.sessions() as session:
            user = UserModel(
                username=f"user-{uuid.uuid4().hex[:8]}",
                is_admin=False,
                disabled=False,
                created_at=self.clock.now(),
            )
            session.add(user)
            session.commit()
            owner = Owner(Actor(user, "test", self.clock), f"proj-{uuid.uuid4().hex[:8]}")
            projects.create(session, owner.actor, name=owner.project)
            limits.set_limit(
                session, self.admin, owner.project, resource="cpu", kind="concurrent", limit=cpu
            )
        return owner

    def hold(self, owner: Owner, cpu: float) -> int:
        """Admit an allocation of cpu in the owner's project, as other work would hold it."""
        with self.sessions() as session:
            return allocations.admit(session, owner.actor, owner.project, resources={"cpu": cpu}).id

    def release(self, owner: Owner, allocation_id: int) -> None:
        with self.sessions() as session:
            allocations.release(session, owner.actor, owner.project, allocation_id)

    def submit(self, owner: Owner, entrypoint: str, cpu: float, **options: Any) -> JobModel:
        with self.sessions() as session:
            return jobs.submit(
                session,
                self.settings,
                self.backend,
                owner.actor,
                owner.project,
                entrypoint=entrypoint,
                resources={"cpu": cpu},
                **options,
            )

    def job_ids(self, owner: Owner) -> list[int]:
        with self.sessions() as session:
            return [job.id for job in jobs.list_for(session, owner.actor, owner.project)]

    def job(self, job_id: int) -> JobModel:
        with self.sessions() as session:
            job = session.get(JobModel, job_id)
            assert job is not None
            return job

    def allocation(self, allocation_id: int) -> AllocationModel:
        with self.sessions() as session:
            allocation = session.get(AllocationModel, allocation_id)
            assert allocation is not None
            return allocation

    def reconciler(self, **overrides: Any) -> Reconciler:
        settings = self.settings.model_copy(update=overrides)
        return Reconciler(self.sessions, settings, self.backend, self.clock)

    def run_until(
        self, reconciler: Reconciler, job_id: int, done: Callable[[JobModel], bool]
    ) -> JobModel:
        """Run passes until the job is as `done` wants it, or has ended: Ray's jobs take real
        time."""
        deadline = time.monotonic() + 60
        while True:
            assert reconciler.reconcile_once()
            job = self.job(job_id)
            if done(job) or job.status not in JOB_ACTIVE:
                return job
            assert time.monotonic() < deadline, f"job {job_id}: {job.status} {job.message}"
            time.sleep(0.1)

    def run_to_end(self, reconciler: Reconciler, job_id: int) -> JobModel:
        return self.run_until(reconciler, job_id, lambda _: False)
