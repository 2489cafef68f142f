"""Online endpoints: a project's registered model versions served on Ray Serve.

Every change (create, update, traffic, promote, rollback) checks the spec, resolves aliases to
versions, verifies each artifact against its registered checksum, trades the endpoint's quota
allocation for one of the new size, and records a revision, all before Serve is touched: a
refused change leaves what runs as it was. Then the project's whole Serve config is rebuilt
from the database and applied (`publish`). When Serve cannot be reached the endpoint keeps a
message, and the reconciler applies the config once it can (`serve_sync`). A change, and a
deletion, is announced once committed (`tenancy.access_changes`), since who may call the
endpoint and how may have changed with it.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fabric import names
from fabric.backends.base import BackendError, ComputeBackend
from fabric.db.models import (
    AllocationModel,
    EndpointModel,
    EndpointRevisionModel,
    ModelVersionModel,
    ProjectModel,
)
from fabric.errors import Conflict, InvalidSpec, NotFound
from fabric.runtime import llm_files, messages
from fabric.services import registry
from fabric.services.quotas import admission as allocations
from fabric.services.serving import serve_config, specs
from fabric.services.serving.specs import (
    ENDPOINT_NAME,
    ENDPOINT_NAME_HELP,
    EndpointKind,
    EndpointSpec,
    Mirror,
    VersionTraffic,
)
from fabric.services.tenancy import access_changes, audit, projects
from fabric.services.tenancy.actor import Actor
from fabric.services.tenancy.roles import Role

log = logging.getLogger("fabric.endpoints")


def parse(raw: dict[str, Any]) -> EndpointSpec:
    try:
        return EndpointSpec.model_validate(raw)
    except ValidationError as exc:
        raise InvalidSpec(
            messages.describe(exc, lambda loc: messages.dotted(loc) or "endpoint")
        ) from None


def _pin(
    session: Session, project: ProjectModel, spec: EndpointSpec
) -> dict[str, ModelVersionModel]:
    """The row of every version the spec names, by deployment key; aliases and 'newest'
    become version numbers in the spec too, so that it is stored as it is served."""
    pinned: dict[str, ModelVersionModel] = {}
    entries: list[tuple[str, VersionTraffic | Mirror]] = [
        (f"versions[{i}]", entry) for i, entry in enumerate(spec.versions)
    ]
    if spec.mirror:
        entries.append(("mirror", spec.mirror))
    for where, entry in entries:
        try:
            model = registry.get_model_in(session, project, entry.model)
            row = registry.version_of(model, entry.version or entry.alias)
        except NotFound as exc:
            raise InvalidSpec(f"{where}: {exc.message}") from None
        _check_kind(spec.kind, where, row)
        entry.version = row.version
        if where != "mirror" and entry.key in pinned:
            raise InvalidSpec(f"{where}: {entry.model} version {row.version} is listed twice")
        pinned[entry.key] = row
    return pinned


def _check_kind(kind: EndpointKind, where: str, row: ModelVersionModel) -> None:
    """A classic endpoint predicts from tables; an llm endpoint serves one base model with
    vLLM, and the base's adapters with it (a request names one), never an adapter alone."""
    label = f"{where}: {row.model.name} version {row.version} is {row.framework}"
    if kind is EndpointKind.CLASSIC and row.framework in llm_files.FRAMEWORKS:
        raise InvalidSpec(
            f"{label}, served by vLLM on an llm endpoint (kind: llm), not by a classic one"
        )
    if kind is EndpointKind.LLM and row.framework == llm_files.LORA:
        base = row.base
        served = f"; serve its base {base.model.name}@{base.version}" if base else ""
        raise InvalidSpec(f"{label}, an adapter: an llm endpoint serves its base{served}")
    if kind is EndpointKind.LLM and row.framework != llm_files.LLM:
        raise InvalidSpec(f"{label}: an llm endpoint serves a model of framework llm")


def _verify(pinned: dict[str, ModelVersionModel]) -> None:
    """Each artifact as it was registered (its checksum), before any replica loads it."""
    for row in pinned.values():
        registry.check_artifact(row)


def _find(session: Session, project: ProjectModel, name: str) -> EndpointModel | None:
    return session.scalar(
        select(EndpointModel).where(
            EndpointModel.project_id == project.id, EndpointModel.name == name
        )
    )


def _get(session: Session, project: ProjectModel, name: str) -> EndpointModel:
    endpoint = _find(session, project, name)
    if endpoint is None:
        raise NotFound(f"endpoint {name!r} not found in project {project.name!r}")
    return endpoint


def get(session: Session, actor: Actor, project_name: str, name: str) -> EndpointModel:
    return _get(session, projects.get_for(session, actor, project_name), name)


def list_for(session: Session, actor: Actor, project_name: str) -> list[EndpointModel]:
    project = projects.get_for(session, actor, project_name)
    return of_project(session, project.id)


def of_project(session: Session, project_id: int) -> list[EndpointModel]:
    return list(
        session.scalars(
            select(EndpointModel)
            .where(EndpointModel.project_id == project_id)
            .order_by(EndpointModel.name)
        )
    )


def apply(
    session: Session,
    backend: ComputeBackend,
    actor: Actor,
    project_name: str,
    name: str,
    raw: dict[str, Any],
    *,
    action: str | None = None,
    note: str = "",
) -> tuple[EndpointModel, bool]:
    """Create the endpoint or give it a new spec; the endpoint, and whether it is new."""
    project, spec = _check(session, actor, project_name, name, raw)
    if spec.kind is EndpointKind.LLM and backend.llm_python is None:
        raise Conflict(
            "an llm endpoint runs in the LLM environment (vLLM), and this server has none: "
            "run `make install`, or set FABRIC_LLM_PYTHON to a Python with vLLM"
        )
    _verify(_pin(session, project, spec))
    endpoint = _find(session, project, name)
    allocation = _readmit(session, actor, project, name, endpoint, spec)
    created = endpoint is None
    endpoint = _record(session, actor, project, name, endpoint, spec, allocation, action, note)
    publish(session, backend, project, actor.now())
    return endpoint, created


def _check(
    session: Session, actor: Actor, project_name: str, name: str, raw: dict[str, Any]
) -> tuple[ProjectModel, EndpointSpec]:
    """The project, if the actor may change its endpoints; the name and the spec, if valid."""
    project = projects.get_for(session, actor, project_name, Role.MEMBER)
    names.check(ENDPOINT_NAME, name, "endpoint name", ENDPOINT_NAME_HELP)
    return project, parse(raw)


def _readmit(
    session: Session,
    actor: Actor,
    project: ProjectModel,
    name: str,
    endpoint: EndpointModel | None,
    spec: EndpointSpec,
) -> AllocationModel:
    """The endpoint's allocation traded for one of the spec's size: refused over the quota."""
    held = session.get(AllocationModel, endpoint.allocation_id) if endpoint else None
    return allocations.readmit(
        session,
        actor,
        project.name,
        held,
        resources=spec.resources(),
        purpose=f"endpoint {name}",
    )


def _record(
    session: Session,
    actor: Actor,
    project: ProjectModel,
    name: str,
    endpoint: EndpointModel | None,
    spec: EndpointSpec,
    allocation: AllocationModel,
    action: str | None,
    note: str,
) -> EndpointModel:
    """The spec stored as the endpoint's next revision (its first when `endpoint` is None),
    with the revision's history row and audit entry, committed."""
    created = endpoint is None
    stored = spec.model_dump(mode="json", exclude_defaults=False)
    now = actor.now()
    if endpoint is None:
        endpoint = EndpointModel(
            project_id=project.id,
            user_id=actor.user.id,
            name=name,
            spec=stored,
            revision=1,
            serve_revision=1,
            created_at=now,
            updated_at=now,
        )
        session.add(endpoint)
    else:
        served = endpoint.served_revision
        door_only = specs.serve_part(endpoint.spec) == specs.serve_part(stored)
        endpoint.spec = stored
        endpoint.revision += 1
        endpoint.serve_revision = served if door_only else endpoint.revision
        endpoint.updated_at = now
    endpoint.allocation_id = allocation.id
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise Conflict(f"endpoint {name!r} was created meanwhile; apply again") from None
    action = action or ("create" if created else "update")
    session.add(
        EndpointRevisionModel(
            endpoint_id=endpoint.id,
            revision=endpoint.revision,
            action=action,
            message=messages.truncate(note),
            spec=stored,
            user_id=actor.user.id,
            created_at=now,
        )
    )
    audit.record(
        session,
        actor,
        f"endpoint.{action}",
        "endpoint",
        name,
        project=project.name,
        detail={"revision": endpoint.revision, "resources": spec.resources()},
    )
    # Who may call it, and how (anonymous, its mirror), may have changed.
    access_changes.note(session)
    session.commit()
    return endpoint


def set_traffic(
    session: Session,
    backend: ComputeBackend,
    actor: Actor,
    project_name: str,
    name: str,
    weights: dict[str, float],
) -> EndpointModel:
    """New weights for versions, given as `MODEL@VERSION` or `VERSION` (one model); a
    version not yet in the endpoint joins it, one left out leaves it."""
    endpoint = get(session, actor, project_name, name)
    spec = dict(endpoint.spec)
    current = {(v["model"], v["version"]): v for v in spec["versions"]}
    models = sorted({model for model, _ in current})
    versions = []
    for label, weight in weights.items():
        model, _, number = label.rpartition("@")
        if not model:
            if len(models) != 1:
                raise InvalidSpec(f"{label!r}: name the model as MODEL@VERSION")
            model = models[0]
        if not number.isdigit():
            raise InvalidSpec(f"{label!r}: the version is a number (MODEL@VERSION)")
        versions.append({"model": model, "version": int(number), "weight": weight})
    spec["versions"] = versions
    return apply(session, backend, actor, project_name, name, spec, action="traffic")[0]


def promote(
    session: Session,
    backend: ComputeBackend,
    actor: Actor,
    project_name: str,
    name: str,
    version: str | None = None,
) -> EndpointModel:
    """All traffic to one version: the one given, else the newest the endpoint serves."""
    endpoint = get(session, actor, project_name, name)
    spec = dict(endpoint.spec)
    entries = spec["versions"]
    if version is None:
        chosen = max(entries, key=lambda v: (v["version"], v["model"]))
    else:
        model, _, number = version.rpartition("@")
        chosen = next(
            (
                v
                for v in entries
                if str(v["version"]) == number and (not model or v["model"] == model)
            ),
            None,
        )
        if chosen is None:
            served = ", ".join(f"{v['model']}@{v['version']}" for v in entries)
            raise InvalidSpec(f"endpoint {name!r} serves no {version!r}; it serves {served}")
    spec["versions"] = [{**chosen, "weight": 100}]
    return apply(session, backend, actor, project_name, name, spec, action="promote")[0]


def rollback(
    session: Session,
    backend: ComputeBackend,
    actor: Actor,
    project_name: str,
    name: str,
    revision: int | None = None,
    *,
    action: str = "rollback",
    note: str = "",
) -> EndpointModel:
    """The spec of an earlier revision (default the one before the current) applied again."""
    endpoint = get(session, actor, project_name, name)
    target = revision if revision is not None else endpoint.revision - 1
    row = session.scalar(
        select(EndpointRevisionModel).where(
            EndpointRevisionModel.endpoint_id == endpoint.id,
            EndpointRevisionModel.revision == target,
        )
    )
    if row is None or target >= endpoint.revision:
        raise InvalidSpec(
            f"endpoint {name!r} has no earlier revision {target}; it is at revision "
            f"{endpoint.revision}"
        )
    return apply(session, backend, actor, project_name, name, row.spec, action=action, note=note)[0]


def revisions(
    session: Session, actor: Actor, project_name: str, name: str
) -> list[EndpointRevisionModel]:
    endpoint = get(session, actor, project_name, name)
    return list(
        session.scalars(
            select(EndpointRevisionModel)
            .where(EndpointRevisionModel.endpoint_id == endpoint.id)
            .order_by(EndpointRevisionModel.revision.desc())
        )
    )


def delete(
    session: Session, backend: ComputeBackend, actor: Actor, project_name: str, name: str
) -> None:
    project = projects.get_for(session, actor, project_name, Role.MEMBER)
    endpoint = _get(session, project, name)
    allocations.lock_project(session, project.id)
    held = session.get(AllocationModel, endpoint.allocation_id) if endpoint.allocation_id else None
    if held is not None:
        allocations.meter(session, actor, project, held)
    session.delete(endpoint)
    audit.record(session, actor, "endpoint.delete", "endpoint", name, project=project_name)
    access_changes.note(session)
    session.commit()
    publish(session, backend, project, actor.now())


def applications(
    session: Session, backend: ComputeBackend, project: ProjectModel, now: datetime
) -> list[dict[str, Any]]:
    """The project's Serve applications as the database says they should be now."""
    apps = []
    for endpoint in of_project(session, project.id):
        spec = EndpointSpec.model_validate(endpoint.spec)
        rows = {
            entry.key: registry.version_of(
                registry.get_model_in(session, project, entry.model), entry.version
            )
            for entry in spec.deployed()
        }
        apps.append(serve_config.application(project.name, endpoint, rows, now, backend.llm_python))
    return apps


def publish(
    session: Session, backend: ComputeBackend, project: ProjectModel, now: datetime
) -> str | None:
    """Apply the project's Serve config; the config's digest, or None when Serve did not
    take it (the endpoints then say why, and the reconciler tries again)."""
    apps = applications(session, backend, project, now)
    try:
        backend.apply_serve_config(project.name, apps)
    except BackendError as exc:
        log.warning("Serve config of project %s not applied: %s", project.name, exc)
        _set_message(session, project.id, f"not applied on Ray Serve yet: {exc}")
        return None
    _set_message(session, project.id, "")
    return serve_config.digest(apps)


def _set_message(session: Session, project_id: int, message: str) -> None:
    for endpoint in of_project(session, project_id):
        endpoint.message = messages.truncate(message)
    session.commit()
