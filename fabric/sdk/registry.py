"""The model registry: a project's models, their numbered versions and aliases."""

from __future__ import annotations

from fabric.api.schemas.registry import ModelVersionPublic, RegisteredModelPublic
from fabric.sdk.transport import Transport, part


class RegistryApi(Transport):
    def _model(self, project: str, name: str) -> str:
        return f"/api/v1/projects/{part(project)}/models/{part(name)}"

    def register_model(
        self,
        project: str,
        name: str,
        source: str,
        *,
        framework: str | None = None,
        entry: str | None = None,
        base: str | None = None,
        description: str = "",
        tags: dict[str, str] | None = None,
    ) -> ModelVersionPublic:
        """Copy a model (a job id, a run folder, or a model file or folder in the project's
        storage or yours) into the registry as the next version of `name`; a `lora` adapter
        names its `base`, the llm version it adapts, as MODEL@VERSION."""
        body = {
            "source": source,
            "framework": framework,
            "entry": entry,
            "base": base,
            "description": description,
            "tags": tags or {},
        }
        path = f"{self._model(project, name)}/versions"
        return self._one(ModelVersionPublic, "POST", path, json=body)

    def list_models(self, project: str) -> list[RegisteredModelPublic]:
        path = f"/api/v1/projects/{part(project)}/models"
        return self._many(RegisteredModelPublic, "GET", path)

    def get_model(self, project: str, name: str) -> RegisteredModelPublic:
        return self._one(RegisteredModelPublic, "GET", self._model(project, name))

    def get_model_version(
        self, project: str, name: str, which: str | int = "latest"
    ) -> ModelVersionPublic:
        """A version by number or alias."""
        path = f"{self._model(project, name)}/versions/{part(which)}"
        return self._one(ModelVersionPublic, "GET", path)

    def set_model_alias(
        self, project: str, name: str, alias: str, version: int
    ) -> ModelVersionPublic:
        path = f"{self._model(project, name)}/aliases/{part(alias)}"
        return self._one(ModelVersionPublic, "PUT", path, json={"version": version})

    def delete_model_alias(self, project: str, name: str, alias: str) -> None:
        self._send("DELETE", f"{self._model(project, name)}/aliases/{part(alias)}")
