"""A project's model registry: models, their versions, and aliases."""

from __future__ import annotations

from fastapi import APIRouter

from fabric.api.deps import ActorDep, SessionDep, SettingsDep
from fabric.api.schemas.registry import (
    AliasSet,
    ModelVersionCreate,
    ModelVersionPublic,
    RegisteredModelPublic,
)
from fabric.db.models import ModelVersionModel, RegisteredModelModel
from fabric.services import registry

router = APIRouter(prefix="/api/v1/projects/{project}/models", tags=["models"])


def version_public(row: ModelVersionModel) -> ModelVersionPublic:
    return ModelVersionPublic(
        model=row.model.name,
        version=row.version,
        framework=row.framework,
        uri=row.uri,
        entry=row.entry,
        base=f"{row.base.model.name}@{row.base.version}" if row.base else None,
        sha256=row.sha256,
        signature=row.signature,
        metrics=row.metrics,
        params=row.params,
        tags=row.tags,
        description=row.description,
        aliases=[a.alias for a in row.model.aliases if a.version == row.version],
        lineage={
            "source": row.source_uri,
            "job": row.source_job_id,
            "pipeline_run": row.pipeline_run_id,
            "dataset": row.dataset_uri,
        },
        user=row.user.username if row.user else None,
        created_at=row.created_at,
    )


def _public(model: RegisteredModelModel) -> RegisteredModelPublic:
    return RegisteredModelPublic(
        name=model.name,
        description=model.description,
        latest_version=model.versions[-1].version if model.versions else None,
        aliases={a.alias: a.version for a in model.aliases},
        versions=[version_public(v) for v in model.versions],
        created_at=model.created_at,
    )


@router.get("")
def list_models(project: str, session: SessionDep, actor: ActorDep) -> list[RegisteredModelPublic]:
    return [_public(m) for m in registry.list_models(session, actor, project)]


@router.get("/{name}")
def get_model(
    project: str, name: str, session: SessionDep, actor: ActorDep
) -> RegisteredModelPublic:
    return _public(registry.get_model(session, actor, project, name))


@router.post("/{name}/versions", status_code=201)
def register_version(
    project: str,
    name: str,
    body: ModelVersionCreate,
    session: SessionDep,
    settings: SettingsDep,
    actor: ActorDep,
) -> ModelVersionPublic:
    """Copy a model into the registry as the next version of `name` (made on first use)."""
    row = registry.register(
        session,
        settings,
        actor,
        project,
        name,
        source=body.source,
        framework=body.framework,
        entry=body.entry,
        base=body.base,
        description=body.description,
        tags=body.tags,
    )
    return version_public(row)


@router.get("/{name}/versions/{which}")
def get_version(
    project: str, name: str, which: str, session: SessionDep, actor: ActorDep
) -> ModelVersionPublic:
    """A version by number or alias (`latest` is the newest)."""
    return version_public(registry.get_version(session, actor, project, name, which))


@router.put("/{name}/aliases/{alias}")
def set_alias(
    project: str,
    name: str,
    alias: str,
    body: AliasSet,
    session: SessionDep,
    settings: SettingsDep,
    actor: ActorDep,
) -> ModelVersionPublic:
    registry.set_alias(session, settings, actor, project, name, alias, body.version)
    return version_public(registry.get_version(session, actor, project, name, body.version))


@router.delete("/{name}/aliases/{alias}", status_code=204)
def delete_alias(
    project: str, name: str, alias: str, session: SessionDep, settings: SettingsDep, actor: ActorDep
) -> None:
    registry.delete_alias(session, settings, actor, project, name, alias)
