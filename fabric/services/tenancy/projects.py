"""Projects and their members; access checks that hide other projects' existence."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fabric import names
from fabric.backends.base import ComputeBackend
from fabric.db.models import (
    AllocationModel,
    EndpointModel,
    MembershipModel,
    ProjectModel,
    UserModel,
)
from fabric.errors import Conflict, Forbidden, NotFound
from fabric.services.tenancy import access_changes, audit, users
from fabric.services.tenancy.actor import Actor
from fabric.services.tenancy.roles import Role


def _not_found(name: str) -> NotFound:
    return NotFound(f"project {name!r} not found")


def role_of(session: Session, project: ProjectModel, user_id: int) -> Role | None:
    role = session.scalar(
        select(MembershipModel.role).where(
            MembershipModel.project_id == project.id, MembershipModel.user_id == user_id
        )
    )
    return Role(role) if role else None


def get_for(session: Session, actor: Actor, name: str, needs: Role = Role.VIEWER) -> ProjectModel:
    """The project, if the actor may act on it with `needs`.

    Non-members get 404, exactly as for a project that does not exist, so nobody learns the
    names of projects they are not in. Members below the needed role get 403.
    """
    project = session.scalar(select(ProjectModel).where(ProjectModel.name == name))
    if project is None:
        raise _not_found(name)
    if actor.user.is_admin:
        return project
    role = role_of(session, project, actor.user.id)
    if role is None:
        raise _not_found(name)
    if not role.allows(needs):
        raise Forbidden(f"this needs the {needs} role in project {name!r}; you are {role}")
    return project


def require_own_or_owner(
    session: Session, actor: Actor, project: ProjectModel, user_id: int, what: str
) -> None:
    """Members act on their own work; owners and admins on anyone's in the project."""
    if user_id == actor.user.id or actor.user.is_admin:
        return
    role = role_of(session, project, actor.user.id)
    if role is None or not role.allows(Role.OWNER):
        raise Forbidden(f"only the {what}'s user or a project owner may do this")


def create(session: Session, actor: Actor, *, name: str, description: str = "") -> ProjectModel:
    names.check(names.PROJECT_NAME, name, "project name", names.PROJECT_NAME_HELP)
    if session.scalar(select(ProjectModel.id).where(ProjectModel.name == name)):
        raise Conflict(f"project {name!r} already exists")
    project = ProjectModel(name=name, description=description, created_at=actor.now())
    project.memberships.append(
        MembershipModel(user_id=actor.user.id, role=Role.OWNER, created_at=actor.now())
    )
    session.add(project)
    audit.record(session, actor, "project.create", "project", name, project=name)
    session.commit()
    return project


def list_for(session: Session, actor: Actor) -> list[tuple[ProjectModel, Role | None]]:
    """Projects the actor belongs to, with their role; an admin sees every project."""
    stmt = (
        select(ProjectModel, MembershipModel.role)
        .outerjoin(
            MembershipModel,
            (MembershipModel.project_id == ProjectModel.id)
            & (MembershipModel.user_id == actor.user.id),
        )
        .order_by(ProjectModel.name)
    )
    if not actor.user.is_admin:
        stmt = stmt.where(MembershipModel.id.is_not(None))
    return [(project, Role(role) if role else None) for project, role in session.execute(stmt)]


def update(session: Session, actor: Actor, name: str, *, description: str) -> ProjectModel:
    project = get_for(session, actor, name, Role.OWNER)
    project.description = description
    audit.record(session, actor, "project.update", "project", name, project=name)
    session.commit()
    return project


def delete(session: Session, backend: ComputeBackend, actor: Actor, name: str) -> None:
    """Delete the project once nothing runs in it, and free its cluster first.

    The cluster goes before the row: if the compute side cannot be reached, the project stays
    and the call can be repeated, rather than leaving a cluster nobody owns.
    """
    project = get_for(session, actor, name, Role.OWNER)
    serving = session.scalars(
        select(EndpointModel.name).where(EndpointModel.project_id == project.id)
    ).all()
    if serving:
        raise Conflict(
            f"project {name!r} still serves endpoints {', '.join(serving)}; delete them first"
        )
    active = session.scalar(
        select(func.count())
        .select_from(AllocationModel)
        .where(AllocationModel.project_id == project.id, AllocationModel.state == "active")
    )
    if active:
        raise Conflict(f"project {name!r} still holds {active} active allocations; release them")
    backend.release(name)
    session.delete(project)
    audit.record(session, actor, "project.delete", "project", name, project=name)
    session.commit()


def member_names(session: Session, name: str) -> list[str]:
    """The usernames of a project's members, for the platform's own use (no access check)."""
    stmt = (
        select(UserModel.username)
        .join(MembershipModel, MembershipModel.user_id == UserModel.id)
        .join(ProjectModel, ProjectModel.id == MembershipModel.project_id)
        .where(ProjectModel.name == name)
        .order_by(UserModel.username)
    )
    return list(session.scalars(stmt))


def members(session: Session, actor: Actor, name: str) -> list[MembershipModel]:
    project = get_for(session, actor, name)
    stmt = select(MembershipModel).where(MembershipModel.project_id == project.id)
    return sorted(session.scalars(stmt), key=lambda m: m.user.username)


def _owners(session: Session, project: ProjectModel) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(MembershipModel)
            .where(MembershipModel.project_id == project.id, MembershipModel.role == Role.OWNER)
        )
        or 0
    )


def set_member(
    session: Session, actor: Actor, name: str, username: str, role: Role
) -> MembershipModel:
    project = get_for(session, actor, name, Role.OWNER)
    user = users.get(session, username)
    membership = session.scalar(
        select(MembershipModel).where(
            MembershipModel.project_id == project.id, MembershipModel.user_id == user.id
        )
    )
    if membership is None:
        membership = MembershipModel(
            project_id=project.id, user_id=user.id, role=role, created_at=actor.now()
        )
        session.add(membership)
    else:
        if membership.role == Role.OWNER and role != Role.OWNER and _owners(session, project) == 1:
            raise Conflict(f"{username!r} is the last owner of {name!r}; add another owner first")
        membership.role = role
    audit.record(
        session, actor, "member.set", "member", username, project=name, detail={"role": role}
    )
    session.commit()
    session.refresh(membership)
    return membership


def remove_member(session: Session, actor: Actor, name: str, username: str) -> None:
    project = get_for(session, actor, name, Role.OWNER)
    user = users.get(session, username)
    membership = session.scalar(
        select(MembershipModel).where(
            MembershipModel.project_id == project.id, MembershipModel.user_id == user.id
        )
    )
    if membership is None:
        raise NotFound(f"{username!r} is not a member of {name!r}")
    if membership.role == Role.OWNER and _owners(session, project) == 1:
        raise Conflict(f"{username!r} is the last owner of {name!r}; add another owner first")
    session.delete(membership)
    audit.record(session, actor, "member.remove", "member", username, project=name)
    access_changes.note(session)
    session.commit()
