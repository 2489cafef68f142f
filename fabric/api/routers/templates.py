"""The job templates any signed-in user may run: their list, and each one's schema."""

from __future__ import annotations

from fastapi import APIRouter

from fabric.api.deps import ActorDep
from fabric.api.schemas import TemplatePublic
from fabric.services import templates

router = APIRouter(prefix="/api/v1/templates", tags=["templates"])


@router.get("")
def list_templates(actor: ActorDep) -> list[TemplatePublic]:
    return [TemplatePublic(**templates.describe(found)) for found in templates.list_all()]


@router.get("/{name}")
def get_template(name: str, actor: ActorDep) -> TemplatePublic:
    return TemplatePublic(**templates.describe(templates.get(name)))
