"""A project's code packages: zipped working directories that its jobs run from."""

from __future__ import annotations

from fastapi import APIRouter, Request

from fabric.api.deps import ActorDep, SessionDep, SettingsDep
from fabric.api.schemas.jobs import PackagePublic
from fabric.api.uploads import receive_package
from fabric.services.jobs import packages

router = APIRouter(prefix="/api/v1/projects/{project}/packages", tags=["packages"])


@router.put("/{name}")
async def upload_package(
    request: Request,
    project: str,
    name: str,
    session: SessionDep,
    settings: SettingsDep,
    actor: ActorDep,
) -> PackagePublic:
    """Store the request body (a zip) as the package; a job names it as `gcs://NAME`."""
    package = await receive_package(request, session, settings, actor, project, name)
    return PackagePublic.model_validate(package)


@router.get("/{name}")
def get_package(
    project: str, name: str, session: SessionDep, settings: SettingsDep, actor: ActorDep
) -> PackagePublic:
    return PackagePublic.model_validate(packages.get(session, settings, actor, project, name))
