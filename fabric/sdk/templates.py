"""Job templates: the built-in ones, and those a project registers and may publish."""

from __future__ import annotations

from typing import Any

from fabric.api.schemas.templates import TemplatePublic
from fabric.sdk.transport import Transport, part


class TemplatesApi(Transport):
    def list_templates(self) -> list[TemplatePublic]:
        """The job templates, each with its parameters' JSON Schema."""
        return self._many(TemplatePublic, "GET", "/api/v1/templates")

    def get_template(self, name: str) -> TemplatePublic:
        """A built-in template by name, or a project's as PROJECT/NAME[@VERSION]."""
        return self._one(TemplatePublic, "GET", f"/api/v1/templates/{part(name)}")

    def register_template(self, project: str, spec: dict[str, Any]) -> TemplatePublic:
        """Register the next version of a project's template: `spec` has name, command,
        parameters (JSON Schema), and optionally description, resources, workers,
        worker_resources, runtime_env and published. Jobs then run it as PROJECT/NAME."""
        path = f"/api/v1/projects/{part(project)}/templates"
        return self._one(TemplatePublic, "POST", path, json=spec)

    def list_project_templates(self, project: str) -> list[TemplatePublic]:
        """Every version of the project's own templates, published or not."""
        return self._many(TemplatePublic, "GET", f"/api/v1/projects/{part(project)}/templates")

    def publish_template(
        self, project: str, name: str, version: int, *, published: bool = True
    ) -> TemplatePublic:
        """Let every project run this version (or, with published=False, no longer)."""
        path = f"/api/v1/projects/{part(project)}/templates/{part(name)}/versions/{version}"
        return self._one(TemplatePublic, "PATCH", path, json={"published": published})
