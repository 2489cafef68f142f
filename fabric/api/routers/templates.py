"""Job templates: the built-in ones and those projects published, which any signed-in user
may run, and the templates a project registers for itself."""

from __future__ import annotations

from fastapi import APIRouter

from fabric.api.deps import ActorDep, SessionDep, SettingsDep
from fabric.api.schemas.templates import CustomTemplateCreate, CustomTemplateUpdate, TemplatePublic
from fabric.services.templates import builtin
from fabric.services.templates import custom as custom_templates

router = APIRouter(tags=["templates"])


@router.get("/api/v1/templates")
def list_templates(session: SessionDep, actor: ActorDep) -> list[TemplatePublic]:
    """The built-in templates, then the newest published version of each project's."""
    built_in = [TemplatePublic(**builtin.describe(found)) for found in builtin.list_all()]
    published = custom_templates.list_published(session)
    return built_in + [TemplatePublic(**custom_templates.describe(t)) for t in published]


@router.get("/api/v1/templates/{name:path}")
def get_template(name: str, session: SessionDep, actor: ActorDep) -> TemplatePublic:
    """A built-in template by name, or a project's as PROJECT/NAME or PROJECT/NAME@VERSION."""
    if custom_templates.is_reference(name):
        return TemplatePublic(
            **custom_templates.describe(custom_templates.resolve(session, actor, name))
        )
    return TemplatePublic(**builtin.describe(builtin.get(name)))


@router.post("/api/v1/projects/{project}/templates", status_code=201)
def register_template(
    project: str,
    body: CustomTemplateCreate,
    session: SessionDep,
    settings: SettingsDep,
    actor: ActorDep,
) -> TemplatePublic:
    """Register the next version of one of the project's builtin."""
    template = custom_templates.register(session, settings, actor, project, **body.model_dump())
    return TemplatePublic(**custom_templates.describe(template))


@router.get("/api/v1/projects/{project}/templates")
def list_project_templates(
    project: str, session: SessionDep, actor: ActorDep
) -> list[TemplatePublic]:
    """Every version of the project's own templates, published or not."""
    found = custom_templates.list_for(session, actor, project)
    return [TemplatePublic(**custom_templates.describe(t)) for t in found]


@router.patch("/api/v1/projects/{project}/templates/{name}/versions/{version}")
def update_template(
    project: str,
    name: str,
    version: int,
    body: CustomTemplateUpdate,
    session: SessionDep,
    actor: ActorDep,
) -> TemplatePublic:
    """Publish a version to every project, or take it back."""
    template = custom_templates.set_published(
        session, actor, project, name, version, body.published
    )
    return TemplatePublic(**custom_templates.describe(template))
