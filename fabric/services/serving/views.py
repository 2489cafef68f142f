"""An endpoint as the API shows it: its row, what it holds of the quota, and Serve's state.

An endpoint stores no state of its own: its status is Serve's status of its application, read
when asked, or Fabric's own word while Serve cannot say (`EndpointStatus`). Serve is asked
once for all the endpoints shown, and not at all while none of them has reached it.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from fabric.backends.base import BackendError, ComputeBackend
from fabric.db.models import AllocationModel, EndpointModel
from fabric.runtime.serve_contract import ROUTER_DEPLOYMENT, ApplicationState, ServeStatus
from fabric.services.serving import endpoints, serve_config
from fabric.services.tenancy.actor import Actor
from fabric.states import EndpointStatus

# Serve's applications of a project, or why Serve could not be asked.
ServeAnswer = ServeStatus | str


@dataclass(frozen=True)
class DeploymentView:
    """One version's deployment, as Serve has it."""

    status: str
    message: str
    replicas: int


@dataclass(frozen=True)
class EndpointView:
    endpoint: EndpointModel
    # Where it is called, below the server's address.
    path: str
    status: EndpointStatus
    message: str
    # By deployment name: the model versions' deployments, not the router's.
    deployments: dict[str, DeploymentView]
    # Held against the project's quota.
    resources: dict[str, float]


def shown(
    session: Session, backend: ComputeBackend, actor: Actor, project_name: str, name: str
) -> EndpointView:
    return of(session, backend, endpoints.get(session, actor, project_name, name))


def listed(
    session: Session, backend: ComputeBackend, actor: Actor, project_name: str
) -> list[EndpointView]:
    return of_all(session, backend, endpoints.list_for(session, actor, project_name))


def of(session: Session, backend: ComputeBackend, endpoint: EndpointModel) -> EndpointView:
    """The endpoint as it is now, after a change to it too."""
    return of_all(session, backend, [endpoint])[0]


def of_all(
    session: Session, backend: ComputeBackend, found: list[EndpointModel]
) -> list[EndpointView]:
    """Endpoints of one project."""
    if not found:
        return []
    project = found[0].project.name
    answer = _ask_serve(backend, project, found)
    return [_view(session, answer, project, endpoint) for endpoint in found]


def _ask_serve(backend: ComputeBackend, project: str, found: list[EndpointModel]) -> ServeAnswer:
    if all(endpoint.message for endpoint in found):
        return {}
    try:
        return backend.serve_status(project)
    except BackendError as exc:
        return str(exc)


def _view(
    session: Session, answer: ServeAnswer, project: str, endpoint: EndpointModel
) -> EndpointView:
    status, message, app = _state(answer, project, endpoint)
    deployments = {
        name: DeploymentView(deployment.status, deployment.message, len(deployment.replicas))
        for name, deployment in (app.deployments.items() if app else ())
        if name != ROUTER_DEPLOYMENT
    }
    allocation = (
        session.get(AllocationModel, endpoint.allocation_id) if endpoint.allocation_id else None
    )
    return EndpointView(
        endpoint=endpoint,
        path=serve_config.route_prefix(project, endpoint.name),
        status=status,
        message=message,
        deployments=deployments,
        resources=allocation.resources if allocation else {},
    )


def _state(
    answer: ServeAnswer, project: str, endpoint: EndpointModel
) -> tuple[EndpointStatus, str, ApplicationState | None]:
    """The endpoint's status and message, and Serve's application when it runs this revision."""
    if endpoint.message:
        return EndpointStatus.PENDING, endpoint.message, None
    if isinstance(answer, str):
        return EndpointStatus.UNKNOWN, answer, None
    app = answer.get(serve_config.app_name(project, endpoint.name))
    if app is None or app.revision != endpoint.served_revision:
        return EndpointStatus.DEPLOYING, "", None
    return EndpointStatus(app.status), app.message, app
