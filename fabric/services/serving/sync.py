"""Keeps Ray Serve in step with the endpoints in the database, from the reconciler's pass.

It applies a project's config when the config changed (a schedule window opened or closed)
or Serve lost applications (a Ray restart), marks the revisions Serve runs as healthy, and
takes an endpoint whose new revision failed to deploy back to its last healthy revision, so
that a bad artifact never leaves an endpoint down.
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from fabric.backends.base import BackendError, ComputeBackend
from fabric.clock import Clock
from fabric.db.models import EndpointModel, EndpointRevisionModel, ProjectModel
from fabric.errors import FabricError
from fabric.services.serving import endpoints, serve_config
from fabric.services.tenancy.actor import Actor
from fabric.states import EndpointStatus

log = logging.getLogger("fabric.serve_sync")
SCHEDULER = "scheduler"
AUTO_ROLLBACK = "auto-rollback"


class ServeSync:
    """One server's Serve step, run every `serve_sync_seconds` while it holds the lease."""

    def __init__(self) -> None:
        # What this server last applied per project: a restarted server applies once again,
        # which Serve takes as no change.
        self._applied: dict[str, str] = {}

    def sync(self, session: Session, backend: ComputeBackend, clock: Clock) -> None:
        ids = set(session.scalars(select(EndpointModel.project_id)))
        projects = session.scalars(select(ProjectModel).where(ProjectModel.id.in_(ids))).all()
        wanted = {project.name for project in projects}
        for name in set(self._applied) - wanted:
            self._clear(backend, name)
        for project in projects:
            try:
                self._project(session, backend, project, clock)
            except BackendError as exc:
                log.info("Serve of project %s not reachable: %s", project.name, exc)

    def _clear(self, backend: ComputeBackend, project: str) -> None:
        """Take a project whose last endpoint went away off Serve. The delete applies this
        itself; when Serve refused it then, nothing else would, and the replicas would hold
        their CPUs for good: so it is tried again each pass until Serve takes it."""
        try:
            backend.apply_serve_config(project, [])
        except BackendError as exc:
            log.info("Serve of project %s not cleared yet: %s", project, exc)
            return
        self._applied.pop(project)

    def _project(
        self, session: Session, backend: ComputeBackend, project: ProjectModel, clock: Clock
    ) -> None:
        apps = endpoints.applications(session, backend, project, clock.now())
        status = backend.serve_status(project.name)
        missing = any(app["name"] not in status for app in apps)
        if missing or self._applied.get(project.name) != serve_config.digest(apps):
            applied = endpoints.publish(session, backend, project, clock.now())
            if applied is not None:
                self._applied[project.name] = applied
            return
        for endpoint in endpoints.of_project(session, project.id):
            app = status.get(serve_config.app_name(project.name, endpoint.name))
            if app is None or app.revision != endpoint.served_revision:
                continue
            serving = app.status
            if serving == EndpointStatus.RUNNING and endpoint.healthy_revision != endpoint.revision:
                endpoint.healthy_revision = endpoint.revision
                session.commit()
            elif serving == EndpointStatus.DEPLOY_FAILED:
                self._back_to_healthy(session, backend, endpoint, app.message, clock)

    def _back_to_healthy(
        self,
        session: Session,
        backend: ComputeBackend,
        endpoint: EndpointModel,
        reason: str,
        clock: Clock,
    ) -> None:
        healthy = endpoint.healthy_revision
        if healthy is None or healthy >= endpoint.revision:
            return
        current = session.scalar(
            select(EndpointRevisionModel.action).where(
                EndpointRevisionModel.endpoint_id == endpoint.id,
                EndpointRevisionModel.revision == endpoint.revision,
            )
        )
        if current == AUTO_ROLLBACK:
            # Going back failed too: say so rather than go round in circles.
            return
        note = (
            f"revision {endpoint.revision} failed to deploy, so the endpoint went back to "
            f"revision {healthy}: {reason}"
        )
        actor = Actor(endpoint.user, SCHEDULER, clock)
        try:
            endpoints.rollback(
                session,
                backend,
                actor,
                endpoint.project.name,
                endpoint.name,
                healthy,
                action=AUTO_ROLLBACK,
                note=note,
            )
        except FabricError as exc:
            log.warning(
                "endpoint %s could not go back to revision %s: %s", endpoint.name, healthy, exc
            )
            return
