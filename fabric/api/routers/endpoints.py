"""A project's online endpoints: their specs, traffic, revisions, keys and state."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Request, Response
from sqlalchemy.orm import Session

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
from fabric.backends.base import BackendUnavailable, ComputeBackend
from fabric.backends.ray_jobs import RayApiError
from fabric.db.models import AllocationModel, EndpointModel
from fabric.services.serving import endpoints, serve_config
from fabric.services.serving import keys as endpoint_keys

router = APIRouter(prefix="/api/v1/projects/{project}/endpoints", tags=["endpoints"])


# Serve's applications of a project by name, or why Serve could not be asked.
ServeApps = dict[str, dict[str, Any]] | str


def _serve_apps(backend: ComputeBackend, project: str, endpoints: list[EndpointModel]) -> ServeApps:
    """Asked once for all the endpoints shown, and not at all when none has reached Serve."""
    if all(endpoint.message for endpoint in endpoints):
        return {}
    try:
        return backend.serve_status(project)
    except (BackendUnavailable, RayApiError) as exc:
        return str(exc)


def _serve_state(apps: ServeApps, project: str, endpoint: EndpointModel) -> dict[str, Any]:
    if endpoint.message:
        return {"status": "PENDING", "message": endpoint.message, "deployments": {}}
    if isinstance(apps, str):
        return {"status": "UNKNOWN", "message": apps, "deployments": {}}
    app = apps.get(serve_config.app_name(project, endpoint.name))
    if app is None or serve_config.deployed_revision(app) != endpoint.revision:
        return {"status": "DEPLOYING", "message": "", "deployments": {}}
    deployments = {
        name: {
            "status": d.get("status"),
            "message": d.get("message", ""),
            "replicas": len(d.get("replicas") or []),
        }
        for name, d in (app.get("deployments") or {}).items()
        if name != serve_config.ROUTER
    }
    return {
        "status": app.get("status"),
        "message": app.get("message", ""),
        "deployments": deployments,
    }


def _public(
    request: Request, session: Session, apps: ServeApps, endpoint: EndpointModel
) -> EndpointPublic:
    project = endpoint.project.name
    state = _serve_state(apps, project, endpoint)
    allocation = (
        session.get(AllocationModel, endpoint.allocation_id) if endpoint.allocation_id else None
    )
    metrics: EndpointMetrics = request.app.state.endpoint_metrics
    return EndpointPublic(
        name=endpoint.name,
        url=str(request.base_url).rstrip("/") + serve_config.route_prefix(project, endpoint.name),
        revision=endpoint.revision,
        healthy_revision=endpoint.healthy_revision,
        status=state["status"],
        message=state["message"],
        spec=endpoint.spec,
        resources=allocation.resources if allocation else {},
        deployments=state["deployments"],
        metrics=metrics.summary(project, endpoint.name),
        user=endpoint.user.username,
        created_at=endpoint.created_at,
        updated_at=endpoint.updated_at,
    )


def _one(
    request: Request, session: Session, backend: ComputeBackend, endpoint: EndpointModel
) -> EndpointPublic:
    apps = _serve_apps(backend, endpoint.project.name, [endpoint])
    return _public(request, session, apps, endpoint)


def _changed(request: Request) -> None:
    """Calls admitted under the old spec or keys must be checked again."""
    request.app.state.gate.forget()


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
    _changed(request)
    response.status_code = 201 if created else 200
    return _one(request, session, backend, endpoint)


@router.get("")
def list_endpoints(
    request: Request, project: str, session: SessionDep, backend: BackendDep, actor: ActorDep
) -> list[EndpointPublic]:
    found = endpoints.list_for(session, actor, project)
    apps = _serve_apps(backend, project, found)
    return [_public(request, session, apps, endpoint) for endpoint in found]


@router.get("/{name}")
def get_endpoint(
    request: Request,
    project: str,
    name: str,
    session: SessionDep,
    backend: BackendDep,
    actor: ActorDep,
) -> EndpointPublic:
    return _one(request, session, backend, endpoints.get(session, actor, project, name))


@router.delete("/{name}", status_code=204)
def delete_endpoint(
    request: Request,
    project: str,
    name: str,
    session: SessionDep,
    backend: BackendDep,
    actor: ActorDep,
) -> None:
    endpoints.delete(session, backend, actor, project, name)
    _changed(request)


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
    _changed(request)
    return _one(request, session, backend, endpoint)


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
    _changed(request)
    return _one(request, session, backend, endpoint)


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
    _changed(request)
    return _one(request, session, backend, endpoint)


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
def revoke_key(
    request: Request, project: str, name: str, key_id: int, session: SessionDep, actor: ActorDep
) -> None:
    endpoint_keys.revoke(session, actor, project, name, key_id)
    _changed(request)
