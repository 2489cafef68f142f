"""Projects, their members and their audit trail."""

from __future__ import annotations

from fastapi import APIRouter, Query
from pydantic import AwareDatetime

from fabric.api.deps import ActorDep, BackendDep, SessionDep
from fabric.api.schemas.tenancy import (
    AuditEventPublic,
    MemberPublic,
    MemberSet,
    ProjectCreate,
    ProjectPublic,
    ProjectUpdate,
)
from fabric.db.models import MembershipModel, ProjectModel
from fabric.services.tenancy import history, projects
from fabric.services.tenancy.roles import Role

router = APIRouter(prefix="/api/v1/projects", tags=["projects"])


def _public(project: ProjectModel, role: Role | None) -> ProjectPublic:
    return ProjectPublic(
        name=project.name,
        description=project.description,
        created_at=project.created_at,
        role=role,
    )


def _member(membership: MembershipModel) -> MemberPublic:
    return MemberPublic(
        username=membership.user.username,
        role=Role(membership.role),
        created_at=membership.created_at,
    )


@router.post("", status_code=201)
def create_project(body: ProjectCreate, session: SessionDep, actor: ActorDep) -> ProjectPublic:
    project = projects.create(session, actor, name=body.name, description=body.description)
    return _public(project, Role.OWNER)


@router.get("")
def list_projects(session: SessionDep, actor: ActorDep) -> list[ProjectPublic]:
    return [_public(p, role) for p, role in projects.list_for(session, actor)]


@router.get("/{project}")
def get_project(project: str, session: SessionDep, actor: ActorDep) -> ProjectPublic:
    row = projects.get_for(session, actor, project)
    return _public(row, projects.role_of(session, row, actor.user.id))


@router.patch("/{project}")
def update_project(
    project: str, body: ProjectUpdate, session: SessionDep, actor: ActorDep
) -> ProjectPublic:
    row = projects.update(session, actor, project, description=body.description)
    return _public(row, projects.role_of(session, row, actor.user.id))


@router.delete("/{project}", status_code=204)
def delete_project(project: str, session: SessionDep, backend: BackendDep, actor: ActorDep) -> None:
    projects.delete(session, backend, actor, project)


@router.get("/{project}/members")
def list_members(project: str, session: SessionDep, actor: ActorDep) -> list[MemberPublic]:
    return [_member(m) for m in projects.members(session, actor, project)]


@router.put("/{project}/members/{username}")
def set_member(
    project: str, username: str, body: MemberSet, session: SessionDep, actor: ActorDep
) -> MemberPublic:
    return _member(projects.set_member(session, actor, project, username, body.role))


@router.delete("/{project}/members/{username}", status_code=204)
def remove_member(project: str, username: str, session: SessionDep, actor: ActorDep) -> None:
    projects.remove_member(session, actor, project, username)


@router.get("/{project}/audit")
def project_audit(
    project: str,
    session: SessionDep,
    actor: ActorDep,
    user: str | None = None,
    action: str | None = None,
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
    limit: int = Query(default=100, ge=1, le=1000),
) -> list[AuditEventPublic]:
    events = history.for_project(
        session, actor, project, user=user, action=action, since=since, until=until, limit=limit
    )
    return [AuditEventPublic.model_validate(e) for e in events]
