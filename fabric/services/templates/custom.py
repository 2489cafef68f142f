"""Templates a project registers itself: a command, a JSON Schema of its parameters,
resource defaults and a runtime environment, in numbered versions.

A job names one as `PROJECT/NAME` (its newest version it may use) or `PROJECT/NAME@VERSION`.
Jobs of the project may use every version; other projects only those its owners published.
A version never changes: the packages its runtime environment names are copied beside it at
registration, so uploading new code under an old package name changes no registered version,
and each job using it gets its own project-scoped copy (see `packages`).
"""

from __future__ import annotations

import re
import shlex
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import jsonschema
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fabric import storage
from fabric.config import Settings
from fabric.db.models import CustomTemplateModel, ProjectModel
from fabric.errors import InvalidSpec, NotFound
from fabric.runtime.cli import ParamsError, check_names, to_args
from fabric.services.jobs import packages, runtime_envs
from fabric.services.quotas import admission as allocations
from fabric.services.templates.builtin import Prepared
from fabric.services.tenancy import audit, projects
from fabric.services.tenancy.actor import Actor
from fabric.services.tenancy.roles import Role

# At most 50 characters, so that a job's PROJECT/NAME@VERSION fits its 100.
NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,49}$")
NAME_HELP = "lowercase letters, digits and '-', at most 50 characters"
REFERENCE = re.compile(r"^(?P<project>[^/@]+)/(?P<name>[^/@]+)(?:@(?P<version>[0-9]+))?$")
PARAMETER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")
GROUP = "custom"


def is_reference(template: str) -> bool:
    """Custom templates go by `PROJECT/NAME`; built-in ones have no project."""
    return "/" in template


def reference(template: CustomTemplateModel) -> str:
    return f"{template.project.name}/{template.name}@{template.version}"


def describe(template: CustomTemplateModel) -> dict[str, Any]:
    """A version as the API shows it, beside the built-in templates."""
    return {
        "name": f"{template.project.name}/{template.name}",
        "group": template.group,
        "description": template.description,
        "command": template.command,
        "project": template.project.name,
        "version": template.version,
        "published": template.published,
        "parameters": template.parameters,
        "resources": template.resources,
        "workers": template.workers,
        "worker_resources": template.worker_resources,
        "outputs": {},
    }


def _check_parameters(schema: dict[str, Any]) -> None:
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise InvalidSpec(f"parameters: not a valid JSON Schema: {exc.message}") from None
    if schema.get("type") != "object":
        raise InvalidSpec('parameters: the schema must describe an object ("type": "object")')
    bad = [name for name in schema.get("properties", {}) if not PARAMETER.match(name)]
    if bad:
        raise InvalidSpec(
            f"parameters: {', '.join(bad)}: a parameter becomes a --flag, so its name is "
            "letters, digits and '_'"
        )


def _snapshot_dir(settings: Settings, project: str, name: str, version: int) -> Path:
    return storage.project_dir(settings, project) / "templates" / name / f"v{version}"


def _package_names(runtime_env: dict[str, Any]) -> list[str]:
    sources = [runtime_env.get("working_dir"), *(runtime_env.get("py_modules") or [])]
    return [uri.removeprefix("gcs://") for uri in sources if uri and uri.startswith("gcs://")]


def _check_definition(name: str, command: str, parameters: dict[str, Any]) -> None:
    """The template's name, the command it runs and the schema of its parameters."""
    if not NAME.match(name):
        raise InvalidSpec(f"name: {NAME_HELP}")
    if not command.strip():
        raise InvalidSpec("command must run something, e.g. 'python train.py'")
    _check_parameters(parameters)


def _resources(
    resources: dict[str, float] | None, workers: int, worker_resources: dict[str, float] | None
) -> tuple[dict[str, float], dict[str, float]]:
    """The driver's and each worker's resources, defaulted and checked; a template without
    workers keeps none for them."""
    resources = resources or {"cpu": 1.0}
    allocations.check_resources(resources)
    if not workers:
        return resources, {}
    worker_resources = worker_resources or {"cpu": 1.0}
    allocations.check_resources(worker_resources)
    return resources, worker_resources


def _next_version(session: Session, project: ProjectModel, name: str) -> int:
    latest = session.scalar(
        select(func.max(CustomTemplateModel.version)).where(
            CustomTemplateModel.project_id == project.id, CustomTemplateModel.name == name
        )
    )
    return (latest or 0) + 1


def _snapshot_packages(settings: Settings, project: str, template: CustomTemplateModel) -> None:
    """Copy the packages the version's runtime environment names beside it, so that uploading
    new code under an old package name changes no registered version."""
    snapshot = _snapshot_dir(settings, project, template.name, template.version)
    snapshot.mkdir(parents=True, exist_ok=True)
    for package in _package_names(template.runtime_env):
        shutil.copyfile(storage.package_dir(settings, project) / package, snapshot / package)


def _record(session: Session, actor: Actor, project: str, template: CustomTemplateModel) -> None:
    session.add(template)
    session.flush()
    audit.record(
        session,
        actor,
        "template.register",
        "template",
        f"{template.name}@{template.version}",
        project=project,
        detail={"published": template.published},
    )
    session.commit()


def register(
    session: Session,
    settings: Settings,
    actor: Actor,
    project_name: str,
    *,
    name: str,
    command: str,
    parameters: dict[str, Any],
    description: str = "",
    group: str = GROUP,
    resources: dict[str, float] | None = None,
    workers: int = 0,
    worker_resources: dict[str, float] | None = None,
    runtime_env: dict[str, Any] | None = None,
    published: bool = False,
) -> CustomTemplateModel:
    """Register the next version of the project's template `name` (members may; publishing
    it takes an owner)."""
    project = projects.get_for(session, actor, project_name, Role.MEMBER)
    _check_definition(name, command, parameters)
    resources, worker_resources = _resources(resources, workers, worker_resources)
    runtime_env = runtime_env or {}
    runtime_envs.check(settings, project.name, runtime_env)
    if published:
        projects.get_for(session, actor, project_name, Role.OWNER)
    template = CustomTemplateModel(
        project_id=project.id,
        user_id=actor.user.id,
        name=name,
        version=_next_version(session, project, name),
        group=group,
        description=description,
        command=command,
        parameters=parameters,
        resources=resources,
        workers=workers,
        worker_resources=worker_resources,
        runtime_env=runtime_env,
        published=published,
        created_at=actor.now(),
    )
    _snapshot_packages(settings, project.name, template)
    _record(session, actor, project.name, template)
    return template


def list_for(session: Session, actor: Actor, project_name: str) -> list[CustomTemplateModel]:
    """Every version of every template the project registered, newest first per name."""
    project = projects.get_for(session, actor, project_name)
    return list(
        session.scalars(
            select(CustomTemplateModel)
            .where(CustomTemplateModel.project_id == project.id)
            .order_by(CustomTemplateModel.name, CustomTemplateModel.version.desc())
        )
    )


def list_published(session: Session) -> list[CustomTemplateModel]:
    """The newest published version of each template, for every project to see."""
    newest = (
        select(
            CustomTemplateModel.project_id,
            CustomTemplateModel.name,
            func.max(CustomTemplateModel.version).label("version"),
        )
        .where(CustomTemplateModel.published.is_(True))
        .group_by(CustomTemplateModel.project_id, CustomTemplateModel.name)
        .subquery()
    )
    return list(
        session.scalars(
            select(CustomTemplateModel)
            .join(
                newest,
                (CustomTemplateModel.project_id == newest.c.project_id)
                & (CustomTemplateModel.name == newest.c.name)
                & (CustomTemplateModel.version == newest.c.version),
            )
            .order_by(CustomTemplateModel.name)
        )
    )


def _in_project(
    session: Session, project: ProjectModel, name: str, version: int | None, published_only: bool
) -> CustomTemplateModel | None:
    query = select(CustomTemplateModel).where(
        CustomTemplateModel.project_id == project.id, CustomTemplateModel.name == name
    )
    if version is not None:
        query = query.where(CustomTemplateModel.version == version)
    if published_only:
        query = query.where(CustomTemplateModel.published.is_(True))
    return session.scalar(query.order_by(CustomTemplateModel.version.desc()).limit(1))


def resolve(session: Session, actor: Actor, ref: str) -> CustomTemplateModel:
    """The version `PROJECT/NAME[@VERSION]` names, if the actor may use it.

    Anyone else than the project's members sees its published versions only, and learns of
    no other: an unpublished one is "not found", as one that does not exist.
    """
    match = REFERENCE.match(ref)
    if match is None:
        raise InvalidSpec(f"template {ref!r}: a custom template is PROJECT/NAME or PROJECT/NAME@N")
    project = session.scalar(select(ProjectModel).where(ProjectModel.name == match["project"]))
    version = int(match["version"]) if match["version"] else None
    found = None
    if project is not None:
        try:
            projects.get_for(session, actor, project.name)
            member = True
        except NotFound:
            member = False
        found = _in_project(session, project, match["name"], version, not member)
    if found is None:
        raise NotFound(f"template {ref!r} not found, or not published to your projects")
    return found


def set_published(
    session: Session, actor: Actor, project_name: str, name: str, version: int, published: bool
) -> CustomTemplateModel:
    """Publish a version to every project, or take it back (the project's owners may)."""
    project = projects.get_for(session, actor, project_name, Role.OWNER)
    template = _in_project(session, project, name, version, published_only=False)
    if template is None:
        raise NotFound(f"template {name}@{version} not found in project {project_name!r}")
    template.published = published
    audit.record(
        session,
        actor,
        "template.publish" if published else "template.unpublish",
        "template",
        f"{name}@{version}",
        project=project.name,
    )
    session.commit()
    return template


def check_param_names(schema: dict[str, Any], names: Iterable[str], where: str) -> None:
    """InvalidSpec naming each parameter that a template's JSON Schema does not declare, with
    the closest declared names (`fabric.runtime.cli.check_names`); a schema that declares
    `additionalProperties` (other than false) or `patternProperties` takes other names too."""
    if schema.get("additionalProperties", False) is not False or "patternProperties" in schema:
        return
    try:
        check_names(names, schema.get("properties", {}), where)
    except ParamsError as exc:
        raise InvalidSpec(str(exc)) from None


def _check_params(schema: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """The parameters with the schema's top-level defaults filled in; InvalidSpec naming
    every field that does not fit."""
    check_param_names(schema, params, "params.")
    defaults = {
        name: spec["default"]
        for name, spec in schema.get("properties", {}).items()
        if "default" in spec
    }
    values = {**params, **{k: v for k, v in defaults.items() if k not in params}}
    errors = sorted(
        jsonschema.Draft202012Validator(schema).iter_errors(values), key=lambda e: e.json_path
    )
    if errors:
        raise InvalidSpec(
            "; ".join(
                f"params{error.json_path.removeprefix('$')}: {error.message}" for error in errors
            )
        )
    return values


def prepare(
    session: Session,
    settings: Settings,
    actor: Actor,
    project_name: str,
    ref: str,
    params: dict[str, Any],
) -> Prepared:
    """A job of `project_name` running the template: parameters checked, appended to the
    command as `--name value` flags, the template's code copied into the job's project."""
    try:
        template = resolve(session, actor, ref)
    except NotFound as exc:
        raise InvalidSpec(f"template: {exc.message}") from None
    values = _check_params(template.parameters, params)
    runtime_env = dict(template.runtime_env)
    snapshot = _snapshot_dir(settings, template.project.name, template.name, template.version)

    def copied(uri: str) -> str:
        if not uri.startswith("gcs://"):
            return uri
        package = uri.removeprefix("gcs://")
        local = f"template_{template.project.name}_{template.name}_v{template.version}_{package}"
        packages.check_name(local)
        target = storage.package_dir(settings, project_name) / local
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(snapshot / package, target)
        return f"gcs://{local}"

    if runtime_env.get("working_dir"):
        runtime_env["working_dir"] = copied(runtime_env["working_dir"])
    if runtime_env.get("py_modules"):
        runtime_env["py_modules"] = [copied(uri) for uri in runtime_env["py_modules"]]
    return Prepared(
        reference=reference(template),
        entrypoint=" ".join([template.command, shlex.join(to_args(values))]).strip(),
        params=values,
        resources=dict(template.resources),
        workers=template.workers,
        worker_resources=dict(template.worker_resources),
        runtime_env=runtime_env,
    )
