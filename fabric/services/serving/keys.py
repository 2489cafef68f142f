"""Who may call an endpoint: a member's Fabric token, an API key made for that endpoint
alone, or anyone when its owner made it anonymous.

Keys are random secrets shown once and stored as SHA-256 digests, like Fabric's tokens; a key
opens one endpoint's calls and nothing of the API.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from fabric.auth import secrets
from fabric.clock import Clock
from fabric.db.models import EndpointKeyModel, EndpointModel, ProjectModel
from fabric.errors import NotFound, Unauthenticated
from fabric.services.serving import endpoints
from fabric.services.tenancy import access_changes, audit, projects, tokens
from fabric.services.tenancy.actor import Actor
from fabric.services.tenancy.roles import Role

KEY_PREFIX = secrets.PREFIXES["endpoint"]


@dataclass(frozen=True)
class Caller:
    """Who an admitted call is: the endpoint, and the key or member's token it came with
    (neither for an anonymous call). Usage and rate limits are counted by it."""

    endpoint: EndpointModel
    key_id: int | None = None
    key_name: str | None = None
    user_id: int | None = None

    @property
    def identity(self) -> str:
        """One name per caller: a key's, a user's, or the anonymous public's."""
        if self.key_id is not None:
            return f"key:{self.key_id}"
        return f"user:{self.user_id}" if self.user_id is not None else "anonymous"


@dataclass(frozen=True)
class Issued:
    key: EndpointKeyModel
    secret: str


def create(session: Session, actor: Actor, project_name: str, name: str, key_name: str) -> Issued:
    project = projects.get_for(session, actor, project_name, Role.MEMBER)
    endpoint = endpoints.get(session, actor, project.name, name)
    new = secrets.new_secret("endpoint")
    key = EndpointKeyModel(
        endpoint_id=endpoint.id,
        name=key_name,
        key_hash=new.digest,
        prefix=new.prefix,
        user_id=actor.user.id,
        created_at=actor.now(),
    )
    session.add(key)
    session.flush()
    audit.record(
        session,
        actor,
        "endpoint.key.create",
        "endpoint",
        f"{name} key {key.id}",
        project=project_name,
    )
    session.commit()
    return Issued(key, new.plain)


def list_for(
    session: Session, actor: Actor, project_name: str, name: str
) -> list[EndpointKeyModel]:
    endpoint = endpoints.get(session, actor, project_name, name)
    return list(
        session.scalars(
            select(EndpointKeyModel)
            .where(EndpointKeyModel.endpoint_id == endpoint.id)
            .order_by(EndpointKeyModel.id)
        )
    )


def revoke(session: Session, actor: Actor, project_name: str, name: str, key_id: int) -> None:
    projects.get_for(session, actor, project_name, Role.MEMBER)
    endpoint = endpoints.get(session, actor, project_name, name)
    key = session.get(EndpointKeyModel, key_id)
    if key is None or key.endpoint_id != endpoint.id:
        raise NotFound(f"key {key_id} not found for endpoint {name!r}")
    if key.revoked_at is None:
        key.revoked_at = actor.now()
        audit.record(
            session,
            actor,
            "endpoint.key.revoke",
            "endpoint",
            f"{name} key {key_id}",
            project=project_name,
        )
        access_changes.note(session)
    session.commit()


def authorize(
    session: Session, clock: Clock, project_name: str, name: str, secret: str | None
) -> Caller:
    """The caller, if `secret` may call the endpoint; Unauthenticated or NotFound (which hides
    the endpoint from callers outside the project) otherwise."""
    endpoint = session.scalar(
        select(EndpointModel)
        .join(ProjectModel, EndpointModel.project_id == ProjectModel.id)
        .where(ProjectModel.name == project_name, EndpointModel.name == name)
    )
    missing = NotFound(f"endpoint {project_name}/{name} not found")
    if secret is None:
        if endpoint is not None and endpoint.spec.get("anonymous"):
            return Caller(endpoint)
        raise Unauthenticated(
            "authentication required: send 'Authorization: Bearer TOKEN' with a Fabric token "
            "or an API key of this endpoint"
        )
    if secret.startswith(KEY_PREFIX):
        key = session.scalar(
            select(EndpointKeyModel).where(EndpointKeyModel.key_hash == secrets.digest(secret))
        )
        if key is None or key.revoked_at is not None:
            raise Unauthenticated("invalid or revoked endpoint key")
        if endpoint is None or key.endpoint_id != endpoint.id:
            raise missing
        return Caller(endpoint, key.id, key.name, key.user_id)
    user = tokens.resolve(session, secret, clock)
    if endpoint is None:
        raise missing
    if not user.is_admin and projects.role_of(session, endpoint.project, user.id) is None:
        raise missing
    return Caller(endpoint, user_id=user.id)
