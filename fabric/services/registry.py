"""The model registry: a project's named models, their immutable versions, and aliases.

A version is registered either by the server (`register`, from a model file or a job's run
folder in the project's storage) or by the `model-register` job, whose folder the server
enters here when the job succeeds (`import_from_job`). Either way the files come from
`fabric.runtime.model_store`, so a version looks the same whichever way it came, and the registry
row records the artifact's checksum, signature and lineage (job, pipeline run, dataset).
"""

from __future__ import annotations

import logging
import re
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fabric import names, runtime, storage
from fabric.config import Settings
from fabric.db.models import (
    JobModel,
    ModelAliasModel,
    ModelVersionModel,
    PipelineTaskRunModel,
    ProjectModel,
    RegisteredModelModel,
)
from fabric.errors import Conflict, InvalidSpec, NotFound
from fabric.runtime import llm_files, model_files, model_store
from fabric.services.tenancy import audit, projects
from fabric.services.tenancy.actor import Actor
from fabric.services.tenancy.roles import Role

log = logging.getLogger("fabric.registry")
ALIAS_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")


def models_dir(settings: Settings, project: str) -> Path:
    return storage.project_dir(settings, project) / "models"


def _check_name(name: str) -> None:
    if not names.MODEL_NAME.fullmatch(name):
        raise InvalidSpec(
            f"model name {name!r}: use letters, digits, '.', '_' and '-', starting with a "
            "letter or digit, at most 100 characters"
        )


def _source(settings: Settings, actor: Actor, project: str, given: str) -> Path:
    """The path a registration names, which must lie in the project's or the caller's
    storage: a user may not publish another project's files, or the server's, as a model."""
    if given.isdigit():
        path = storage.run_dir(settings, project, int(given))
    else:
        path = Path(given)
        if not path.is_absolute():
            path = storage.project_dir(settings, project) / path
    path = path.resolve()
    roots = [storage.project_dir(settings, project), storage.user_dir(settings, actor.name)]
    if not any(path.is_relative_to(root.resolve()) for root in roots):
        raise InvalidSpec(
            f"source {given!r} is outside this project's storage ({roots[0]}) and yours "
            f"({roots[1]}): copy the model there first"
        )
    return path


def get_model_in(session: Session, project: ProjectModel, name: str) -> RegisteredModelModel:
    model = session.scalar(
        select(RegisteredModelModel).where(
            RegisteredModelModel.project_id == project.id, RegisteredModelModel.name == name
        )
    )
    if model is None:
        raise NotFound(f"model {name!r} not found in project {project.name!r}")
    return model


def adapter_names(session: Session, project_id: int, model: str, version: int) -> list[str]:
    """The names of the project's lora models with a version registered for `model@version`:
    what its llm endpoints serve as `MODEL:NAME` (each name's newest such version)."""
    base = (
        select(ModelVersionModel.id)
        .join(RegisteredModelModel, RegisteredModelModel.id == ModelVersionModel.model_id)
        .where(
            RegisteredModelModel.project_id == project_id,
            RegisteredModelModel.name == model,
            ModelVersionModel.version == version,
        )
        .scalar_subquery()
    )
    names = session.scalars(
        select(RegisteredModelModel.name)
        .join(ModelVersionModel, ModelVersionModel.model_id == RegisteredModelModel.id)
        .where(ModelVersionModel.base_version_id == base)
        .distinct()
        .order_by(RegisteredModelModel.name)
    )
    return list(names)


def _model_or_new(
    session: Session, project: ProjectModel, name: str, now: datetime
) -> RegisteredModelModel:
    try:
        return get_model_in(session, project, name)
    except NotFound:
        model = RegisteredModelModel(project_id=project.id, name=name, created_at=now)
        session.add(model)
        try:
            session.flush()
        except IntegrityError:
            # Another registration made it first.
            session.rollback()
            return get_model_in(session, project, name)
        return model


def _pipeline_run_of(session: Session, job_id: int | None) -> int | None:
    if job_id is None:
        return None
    return session.scalar(
        select(PipelineTaskRunModel.run_id).where(PipelineTaskRunModel.job_id == job_id)
    )


def _enter(
    session: Session,
    project: ProjectModel,
    manifest: dict[str, Any],
    folder: Path,
    user_id: int | None,
    now: datetime,
) -> ModelVersionModel:
    """The registry row of a version folder that `model_store.write_version` made."""
    model = _model_or_new(session, project, manifest["name"], now)
    source = manifest.get("source") or {}
    base = _recorded_base(session, project, manifest)
    version = ModelVersionModel(
        model_id=model.id,
        version=manifest["version"],
        framework=manifest["framework"],
        uri=str(folder / manifest["artifact"]),
        entry=manifest.get("entry"),
        sha256=manifest["sha256"],
        signature=manifest.get("signature") or {},
        metrics=manifest.get("metrics") or {},
        params=manifest.get("params"),
        tags=manifest.get("tags") or {},
        description=manifest.get("description", ""),
        source_uri=source.get("uri"),
        source_job_id=source.get("job"),
        pipeline_run_id=_pipeline_run_of(session, source.get("job")),
        dataset_uri=source.get("dataset"),
        user_id=user_id,
        base_version_id=base.id if base else None,
        created_at=now,
    )
    session.add(version)
    session.flush()
    return version


def _recorded_base(
    session: Session, project: ProjectModel, manifest: dict[str, Any]
) -> ModelVersionModel | None:
    """The registry row of the base a lora manifest names (None for other frameworks)."""
    base = manifest.get("base")
    if not isinstance(base, dict):
        return None
    row = session.scalar(
        select(ModelVersionModel)
        .join(RegisteredModelModel)
        .where(
            RegisteredModelModel.project_id == project.id,
            RegisteredModelModel.name == base.get("model"),
            ModelVersionModel.version == base.get("version"),
        )
    )
    if row is None:
        log.warning(
            "version %s of %s names a base not in the registry: %s",
            manifest.get("version"),
            manifest.get("name"),
            base,
        )
    return row


def _base(session: Session, project: ProjectModel, reference: str) -> ModelVersionModel:
    """The llm version a lora adapter names as its base, `MODEL@VERSION` (an alias or none,
    the newest, is pinned to its version); InvalidSpec when it is not one."""
    name, _, which = reference.removeprefix(model_files.REGISTERED).partition("@")
    try:
        version = version_of(get_model_in(session, project, name), which or None)
    except NotFound as exc:
        raise InvalidSpec(f"base {reference!r}: {exc.message}") from None
    if version.framework != llm_files.LLM:
        raise InvalidSpec(
            f"base {reference!r}: version {version.version} of {name!r} is {version.framework}, "
            "not llm; a lora adapter adapts an llm version"
        )
    return version


def register(
    session: Session,
    settings: Settings,
    actor: Actor,
    project_name: str,
    name: str,
    *,
    source: str,
    framework: str | None = None,
    entry: str | None = None,
    base: str | None = None,
    description: str = "",
    tags: dict[str, str] | None = None,
) -> ModelVersionModel:
    """Copy a model into the registry as the next version of `name`; a lora adapter names
    its `base`, the llm version it adapts (else the base its run recorded)."""
    project = projects.get_for(session, actor, project_name, Role.MEMBER)
    _check_name(name)
    if framework == "custom" and not entry:
        raise InvalidSpec("a custom model needs entry: the 'module:Class' of its code")
    path = _source(settings, actor, project_name, source)
    try:
        resolved = model_files.resolve(str(path), framework)
        if entry:
            resolved.outputs["entry"] = entry
    except model_files.ModelError as exc:
        raise InvalidSpec(f"source: {exc}") from None
    # Else the base its run recorded: a name, or a registered adapter's {"model", "version"}.
    recorded: Any = resolved.outputs.get("base")
    if isinstance(recorded, dict):
        recorded = f"{recorded.get('model')}@{recorded.get('version')}"
    wanted = base or recorded
    try:
        llm_files.check_base(resolved.framework, wanted)
    except llm_files.FolderError as exc:
        raise InvalidSpec(f"base: {exc}") from None
    if wanted is not None:
        row = _base(session, project, str(wanted))
        resolved.outputs["base"] = {"model": row.model.name, "version": row.version}
    manifest = model_store.write_version(
        resolved,
        models_dir(settings, project_name),
        name,
        project=project_name,
        description=description,
        tags=tags,
    )
    folder = models_dir(settings, project_name) / name / str(manifest["version"])
    version = _enter(session, project, manifest, folder, actor.user.id, actor.now())
    audit.record(
        session,
        actor,
        "model.register",
        "model",
        f"{name}@{version.version}",
        project=project_name,
        detail={"framework": version.framework, "sha256": version.sha256}
        | ({"base": manifest["base"]} if manifest.get("base") else {}),
    )
    session.commit()
    return version


def import_from_job(session: Session, settings: Settings, actor: Actor, job: JobModel) -> None:
    """Enter the version a succeeded `model-register` job wrote; a folder already entered,
    or one the job did not finish, is left as it is."""
    project = job.project.name
    try:
        outputs = runtime.read_outputs(storage.run_dir(settings, project, job.id))
        # By name and number, not the job's own path: on KubeRay it wrote at its pod's mount.
        folder = (
            models_dir(settings, project)
            / outputs["model_name"]
            / str(int(outputs["model_version"]))
        )
        manifest = model_store.read_manifest(folder)
    except (OSError, KeyError, ValueError) as exc:
        log.warning("job %s registered no readable model version: %s", job.id, exc)
        return
    if not folder.resolve().is_relative_to(models_dir(settings, project).resolve()):
        log.warning("job %s named a version outside the project's models: %s", job.id, folder)
        return
    try:
        version = _enter(session, job.project, manifest, folder, job.user_id, actor.now())
    except IntegrityError:
        session.rollback()
        return
    audit.record(
        session,
        actor,
        "model.register",
        "model",
        f"{manifest['name']}@{version.version}",
        project=project,
        detail={"framework": version.framework, "job": job.id},
    )
    session.commit()


def list_models(session: Session, actor: Actor, project_name: str) -> list[RegisteredModelModel]:
    project = projects.get_for(session, actor, project_name)
    return list(
        session.scalars(
            select(RegisteredModelModel)
            .where(RegisteredModelModel.project_id == project.id)
            .order_by(RegisteredModelModel.name)
        ).unique()
    )


def get_model(session: Session, actor: Actor, project_name: str, name: str) -> RegisteredModelModel:
    return get_model_in(session, projects.get_for(session, actor, project_name), name)


def version_of(model: RegisteredModelModel, which: str | int | None) -> ModelVersionModel:
    """`which` as a version number, an alias, or None for the newest version."""
    if not model.versions:
        raise NotFound(f"model {model.name!r} has no versions")
    if which is None or which == "latest":
        return model.versions[-1]
    number: int | None
    if isinstance(which, int) or str(which).isdigit():
        number = int(which)
    else:
        number = next((a.version for a in model.aliases if a.alias == which), None)
        if number is None:
            known = ", ".join(a.alias for a in model.aliases) or "none"
            raise NotFound(f"model {model.name!r} has no alias {which!r}; its aliases: {known}")
    for version in model.versions:
        if version.version == number:
            return version
    raise NotFound(f"model {model.name!r} has no version {number}")


def get_version(
    session: Session, actor: Actor, project_name: str, name: str, which: str | int | None
) -> ModelVersionModel:
    return version_of(get_model(session, actor, project_name, name), which)


def set_alias(
    session: Session,
    settings: Settings,
    actor: Actor,
    project_name: str,
    name: str,
    alias: str,
    version: int,
) -> ModelAliasModel:
    """Point `alias` at a version (moving it if it pointed elsewhere)."""
    project = projects.get_for(session, actor, project_name, Role.MEMBER)
    names.check(ALIAS_PATTERN, alias, "alias", "lowercase letters, digits, '_' and '-'")
    if alias == "latest":
        raise InvalidSpec("'latest' always means the newest version; choose another alias")
    model = get_model_in(session, project, name)
    version_of(model, version)
    row = next((a for a in model.aliases if a.alias == alias), None)
    previous = row.version if row else None
    if row is None:
        row = ModelAliasModel(model_id=model.id, alias=alias, version=version)
        session.add(row)
    row.version = version
    audit.record(
        session,
        actor,
        "model.alias",
        "model",
        f"{name}@{alias}",
        project=project_name,
        detail={"version": version, "previous": previous},
    )
    session.flush()
    session.refresh(model)
    _write_aliases(settings, project_name, model)
    session.commit()
    return row


def delete_alias(
    session: Session, settings: Settings, actor: Actor, project_name: str, name: str, alias: str
) -> None:
    project = projects.get_for(session, actor, project_name, Role.MEMBER)
    model = get_model_in(session, project, name)
    row = next((a for a in model.aliases if a.alias == alias), None)
    if row is None:
        raise NotFound(f"model {name!r} has no alias {alias!r}")
    session.delete(row)
    audit.record(session, actor, "model.unalias", "model", f"{name}@{alias}", project=project_name)
    session.flush()
    session.refresh(model)
    _write_aliases(settings, project_name, model)
    session.commit()


def _write_aliases(settings: Settings, project: str, model: RegisteredModelModel) -> None:
    """Jobs resolve `NAME@ALIAS` from storage (they never reach the database)."""
    aliases = {a.alias: a.version for a in model.aliases}
    model_store.write_aliases(models_dir(settings, project), model.name, aliases)


def check_artifact(version: ModelVersionModel) -> None:
    """Refuse to serve an artifact that is gone or changed since it was registered."""
    path = Path(version.uri)
    label = f"model {version.model.name!r} version {version.version}"
    if not path.exists():
        raise Conflict(f"{label}: its artifact {path} is missing; register the model again")
    found = model_store.checksum(path)
    if found != version.sha256:
        raise Conflict(
            f"{label}: its artifact {path} does not match its checksum (registered "
            f"{version.sha256[:12]}, found {found[:12]}): it was changed or damaged since it "
            "was registered; register the model again"
        )
