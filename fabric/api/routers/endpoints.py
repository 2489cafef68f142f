"""A project's online endpoints: their specs, traffic, revisions, keys and state."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Request, Response

from fabric.api.deps import ActorDep, BackendDep, SessionDep
from fabric.api.endpoint_metrics import EndpointMetrics
from fabric.api.schemas.serving import (
    EndpointKeyCreate,
    EndpointKeyCreated,
    EndpointKeyPublic,
    EndpointPromote,
    EndpointPublic,
    EndpointRevisionPublic,
    EndpointRollback,
    EndpointTraffic,
)
from fabric.services.serving import endpoints, views
from fabric.services.serving import keys as endpoint_keys
from fabric.services.serving.views import EndpointView

router = APIRouter(prefix="/api/v1/projects/{project}/endpoints", tags=["endpoints"])


def _public(request: Request, view: EndpointView) -> EndpointPublic:
    endpoint = view.endpoint
    metrics: EndpointMetrics = request.app.state.endpoint_metrics
    return EndpointPublic(
        name=endpoint.name,
        url=str(request.base_url).rstrip("/") + view.path,
        revision=endpoint.revision,
        healthy_revision=endpoint.healthy_revision,
        status=view.status,
        message=view.message,
        spec=endpoint.spec,
        resources=view.resources,
        deployments=view.deployments,
        metrics=metrics.summary(endpoint.project.name, endpoint.name),
        user=endpoint.user.username,
        created_at=endpoint.created_at,
        updated_at=endpoint.updated_at,
    )


@router.put("/{name}")
def apply_endpoint(
    request: Request,
    project: str,
    name: str,
    response: Response,
    session: SessionDep,
    backend: BackendDep,
    actor: ActorDep,
    spec: dict[str, Any] = Body(
        description="versions with weights, mirror, replicas or autoscaling, cpu/gpu per "
        "replica, batching, health check, env, schedule, anonymous"
    ),
) -> EndpointPublic:
    """Create the endpoint (201) or give it a new spec, a new revision (200)."""
    endpoint, created = endpoints.apply(session, backend, actor, project, name, spec)
    response.status_code = 201 if created else 200
    return _public(request, views.of(session, backend, endpoint))


@router.get("")
def list_endpoints(
    request: Request, project: str, session: SessionDep, backend: BackendDep, actor: ActorDep
) -> list[EndpointPublic]:
    return [_public(request, view) for view in views.listed(session, backend, actor, project)]


@router.get("/{name}")
def get_endpoint(
    request: Request,
    project: str,
    name: str,
    session: SessionDep,
    backend: BackendDep,
    actor: ActorDep,
) -> EndpointPublic:
    return _public(request, views.shown(session, backend, actor, project, name))


@router.delete("/{name}", status_code=204)
def delete_endpoint(
    project: str, name: str, session: SessionDep, backend: BackendDep, actor: ActorDep
) -> None:
    endpoints.delete(session, backend, actor, project, name)


@router.post("/{name}/traffic")
def set_traffic(
    request: Request,
    project: str,
    name: str,
    body: EndpointTraffic,
    session: SessionDep,
    backend: BackendDep,
    actor: ActorDep,
) -> EndpointPublic:
    """Split traffic between versions by weight (a canary: {"3": 80, "4": 20})."""
    endpoint = endpoints.set_traffic(session, backend, actor, project, name, body.weights)
    return _public(request, views.of(session, backend, endpoint))


@router.post("/{name}/promote")
def promote(
    request: Request,
    project: str,
    name: str,
    body: EndpointPromote,
    session: SessionDep,
    backend: BackendDep,
    actor: ActorDep,
) -> EndpointPublic:
    """All traffic to one version (default the newest the endpoint serves)."""
    endpoint = endpoints.promote(session, backend, actor, project, name, body.version)
    return _public(request, views.of(session, backend, endpoint))


@router.post("/{name}/rollback")
def rollback(
    request: Request,
    project: str,
    name: str,
    body: EndpointRollback,
    session: SessionDep,
    backend: BackendDep,
    actor: ActorDep,
) -> EndpointPublic:
    """The previous revision's spec (or a given revision's) again, as a new revision."""
    endpoint = endpoints.rollback(session, backend, actor, project, name, body.revision)
    return _public(request, views.of(session, backend, endpoint))


@router.get("/{name}/revisions")
def list_revisions(
    project: str, name: str, session: SessionDep, actor: ActorDep
) -> list[EndpointRevisionPublic]:
    return [
        EndpointRevisionPublic(
            revision=r.revision,
            action=r.action,
            message=r.message,
            spec=r.spec,
            user=r.user.username if r.user else None,
            created_at=r.created_at,
        )
        for r in endpoints.revisions(session, actor, project, name)
    ]


@router.post("/{name}/keys", status_code=201)
def create_key(
    project: str, name: str, body: EndpointKeyCreate, session: SessionDep, actor: ActorDep
) -> EndpointKeyCreated:
    issued = endpoint_keys.create(session, actor, project, name, body.name)
    return EndpointKeyCreated(
        id=issued.key.id,
        name=issued.key.name,
        prefix=issued.key.prefix,
        created_at=issued.key.created_at,
        revoked_at=None,
        key=issued.secret,
    )


@router.get("/{name}/keys")
def list_keys(
    project: str, name: str, session: SessionDep, actor: ActorDep
) -> list[EndpointKeyPublic]:
    return [
        EndpointKeyPublic.model_validate(k, from_attributes=True)
        for k in endpoint_keys.list_for(session, actor, project, name)
    ]


@router.delete("/{name}/keys/{key_id}", status_code=204)
def revoke_key(project: str, name: str, key_id: int, session: SessionDep, actor: ActorDep) -> None:
    endpoint_keys.revoke(session, actor, project, name, key_id)
