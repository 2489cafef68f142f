"""A job ends once, whoever ends it first (a user's stop or the reconciler)."""

from pathlib import Path

from sqlalchemy import select

from fabric.clock import Clock
from fabric.config import Settings
from fabric.db import migrate
from fabric.db.engine import make_engine, make_sessionmaker
from fabric.db.models import AuditEventModel, JobModel, ProjectModel, UserModel
from fabric.services.jobs import jobs
from fabric.services.tenancy.actor import Actor
from fabric.states import JobStatus


def test_the_first_finish_wins(tmp_path: Path) -> None:
    engine = make_engine(Settings(home=tmp_path, database_url=f"sqlite:///{tmp_path / 'f.db'}"))
    migrate.upgrade(engine)
    clock = Clock()
    with make_sessionmaker(engine)() as session:
        user = UserModel(username="ann", is_admin=False, disabled=False, created_at=clock.now())
        project = ProjectModel(name="p", description="", created_at=clock.now(), admission_seq=0)
        session.add_all([user, project])
        session.flush()
        job = JobModel(
            project_id=project.id,
            user_id=user.id,
            name="j",
            entrypoint="true",
            runtime_env={},
            resources={"cpu": 1},
            status=JobStatus.RUNNING,
            created_at=clock.now(),
        )
        session.add(job)
        session.commit()
        actor = Actor(user, "test", clock)

        jobs.finish(session, actor, job, JobStatus.STOPPED, "stopped by ann")
        jobs.finish(session, actor, job, JobStatus.STOPPED, "Job was intentionally stopped.")

        assert (job.status, job.message) == (JobStatus.STOPPED, "stopped by ann")
        ends = session.scalars(select(AuditEventModel).where(AuditEventModel.action == "job.end"))
        assert len(list(ends)) == 1
    engine.dispose()
