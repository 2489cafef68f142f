"""Resource pools (admins manage them) and the pools a project may use."""

from __future__ import annotations

from fastapi import APIRouter

from fabric.api.deps import ActorDep, SessionDep
from fabric.api.schemas.tenancy import PoolCreate, PoolPublic
from fabric.services.tenancy import pools

router = APIRouter(prefix="/api/v1", tags=["pools"])


@router.get("/pools")
def list_pools(session: SessionDep, actor: ActorDep) -> list[PoolPublic]:
    return [PoolPublic.model_validate(p) for p in pools.list_all(session)]


@router.post("/pools", status_code=201)
def create_pool(body: PoolCreate, session: SessionDep, actor: ActorDep) -> PoolPublic:
    return PoolPublic.model_validate(pools.create(session, actor, **body.model_dump()))


@router.get("/pools/{pool}")
def get_pool(pool: str, session: SessionDep, actor: ActorDep) -> PoolPublic:
    return PoolPublic.model_validate(pools.get(session, pool))


@router.delete("/pools/{pool}", status_code=204)
def delete_pool(pool: str, session: SessionDep, actor: ActorDep) -> None:
    pools.delete(session, actor, pool)


@router.get("/projects/{project}/pools")
def project_pools(project: str, session: SessionDep, actor: ActorDep) -> list[PoolPublic]:
    return [PoolPublic.model_validate(p) for p in pools.of_project(session, actor, project)]


@router.put("/projects/{project}/pools/{pool}", status_code=204)
def grant_pool(project: str, pool: str, session: SessionDep, actor: ActorDep) -> None:
    pools.grant(session, actor, project, pool)


@router.delete("/projects/{project}/pools/{pool}", status_code=204)
def revoke_pool(project: str, pool: str, session: SessionDep, actor: ActorDep) -> None:
    pools.revoke(session, actor, project, pool)
