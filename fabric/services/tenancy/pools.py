"""Resource pools, and which projects may use them."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fabric import names
from fabric.db.models import AllocationModel, PoolModel, ProjectPoolModel
from fabric.errors import Conflict, InvalidSpec, NotFound
from fabric.services.tenancy import audit, projects
from fabric.services.tenancy.access import require_admin
from fabric.services.tenancy.actor import Actor


def get(session: Session, name: str) -> PoolModel:
    pool = session.scalar(select(PoolModel).where(PoolModel.name == name))
    if pool is None:
        raise NotFound(f"pool {name!r} not found")
    return pool


def list_all(session: Session) -> list[PoolModel]:
    return list(session.scalars(select(PoolModel).order_by(PoolModel.name)))


def create(
    session: Session,
    actor: Actor,
    *,
    name: str,
    description: str = "",
    resources: dict[str, float] | None = None,
    node_selector: dict[str, str] | None = None,
) -> PoolModel:
    require_admin(actor, "manage pools")
    names.check(names.POOL_NAME, name, "pool name", names.PROJECT_NAME_HELP)
    for resource in resources or {}:
        names.check(names.RESOURCE_NAME, resource, "resource name", names.RESOURCE_NAME_HELP)
    if session.scalar(select(PoolModel.id).where(PoolModel.name == name)):
        raise Conflict(f"pool {name!r} already exists")
    pool = PoolModel(
        name=name,
        description=description,
        resources=resources or {},
        node_selector=node_selector or {},
        created_at=actor.now(),
    )
    session.add(pool)
    audit.record(session, actor, "pool.create", "pool", name, detail={"resources": resources})
    session.commit()
    return pool


def delete(session: Session, actor: Actor, name: str) -> None:
    require_admin(actor, "manage pools")
    pool = get(session, name)
    active = session.scalar(
        select(func.count())
        .select_from(AllocationModel)
        .where(AllocationModel.pool_id == pool.id, AllocationModel.state == "active")
    )
    if active:
        raise Conflict(f"pool {name!r} still holds {active} active allocations; release them")
    session.delete(pool)
    audit.record(session, actor, "pool.delete", "pool", name)
    session.commit()


def of_project(session: Session, actor: Actor, project_name: str) -> list[PoolModel]:
    project = projects.get_for(session, actor, project_name)
    stmt = select(ProjectPoolModel).where(ProjectPoolModel.project_id == project.id)
    return sorted((link.pool for link in session.scalars(stmt)), key=lambda p: p.name)


def grant(session: Session, actor: Actor, project_name: str, pool_name: str) -> None:
    project = projects.get_for(session, actor, project_name)
    require_admin(actor, "manage pools")
    pool = get(session, pool_name)
    if session.get(ProjectPoolModel, (project.id, pool.id)) is None:
        session.add(ProjectPoolModel(project_id=project.id, pool_id=pool.id))
        audit.record(session, actor, "pool.grant", "pool", pool_name, project=project_name)
        session.commit()


def revoke(session: Session, actor: Actor, project_name: str, pool_name: str) -> None:
    project = projects.get_for(session, actor, project_name)
    require_admin(actor, "manage pools")
    link = session.get(ProjectPoolModel, (project.id, get(session, pool_name).id))
    if link is None:
        raise NotFound(f"project {project_name!r} has no pool {pool_name!r}")
    session.delete(link)
    audit.record(session, actor, "pool.revoke", "pool", pool_name, project=project_name)
    session.commit()


def check_usable(session: Session, project_id: int, pool_name: str, project_name: str) -> PoolModel:
    """The pool, if the project was granted it; otherwise an error listing what it may use."""
    pool = session.scalar(select(PoolModel).where(PoolModel.name == pool_name))
    if pool is None or session.get(ProjectPoolModel, (project_id, pool.id)) is None:
        granted = session.scalars(
            select(PoolModel.name)
            .join(ProjectPoolModel, ProjectPoolModel.pool_id == PoolModel.id)
            .where(ProjectPoolModel.project_id == project_id)
        ).all()
        allowed = ", ".join(sorted(granted)) or "none"
        raise InvalidSpec(
            f"project {project_name!r} may not use pool {pool_name!r} (its pools: {allowed})"
        )
    return pool
