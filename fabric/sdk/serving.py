"""Endpoints: registered model versions served on Ray Serve, their traffic, revisions and
keys, and calling them."""

from __future__ import annotations

from typing import Any

from fabric.api.schemas.serving import (
    EndpointKeyCreated,
    EndpointKeyPublic,
    EndpointPublic,
    EndpointRevisionPublic,
    PredictionsPublic,
)
from fabric.runtime.serve_contract import VERSION_HEADER
from fabric.sdk.transport import Transport, part


class ServingApi(Transport):
    def _endpoint(self, project: str, name: str) -> str:
        return f"/api/v1/projects/{part(project)}/endpoints/{part(name)}"

    def apply_endpoint(self, project: str, name: str, spec: dict[str, Any]) -> EndpointPublic:
        """Create the endpoint or give it a new spec (a new revision); Serve is updated."""
        return self._one(EndpointPublic, "PUT", self._endpoint(project, name), json=spec)

    def list_endpoints(self, project: str) -> list[EndpointPublic]:
        path = f"/api/v1/projects/{part(project)}/endpoints"
        return self._many(EndpointPublic, "GET", path)

    def get_endpoint(self, project: str, name: str) -> EndpointPublic:
        """Its spec, Serve's state of it, and the calls this server has passed to it."""
        return self._one(EndpointPublic, "GET", self._endpoint(project, name))

    def delete_endpoint(self, project: str, name: str) -> None:
        self._send("DELETE", self._endpoint(project, name))

    def set_endpoint_traffic(
        self, project: str, name: str, weights: dict[str, float]
    ) -> EndpointPublic:
        """Weights per version, as "MODEL@VERSION" or "VERSION": {"1": 80, "2": 20}."""
        path = f"{self._endpoint(project, name)}/traffic"
        return self._one(EndpointPublic, "POST", path, json={"weights": weights})

    def promote_endpoint(
        self, project: str, name: str, version: str | None = None
    ) -> EndpointPublic:
        path = f"{self._endpoint(project, name)}/promote"
        return self._one(EndpointPublic, "POST", path, json={"version": version})

    def rollback_endpoint(
        self, project: str, name: str, revision: int | None = None
    ) -> EndpointPublic:
        path = f"{self._endpoint(project, name)}/rollback"
        return self._one(EndpointPublic, "POST", path, json={"revision": revision})

    def endpoint_revisions(self, project: str, name: str) -> list[EndpointRevisionPublic]:
        path = f"{self._endpoint(project, name)}/revisions"
        return self._many(EndpointRevisionPublic, "GET", path)

    def create_endpoint_key(self, project: str, name: str, key_name: str) -> EndpointKeyCreated:
        """A key that calls this endpoint only; its secret is in `key`, shown once."""
        path = f"{self._endpoint(project, name)}/keys"
        return self._one(EndpointKeyCreated, "POST", path, json={"name": key_name})

    def list_endpoint_keys(self, project: str, name: str) -> list[EndpointKeyPublic]:
        return self._many(EndpointKeyPublic, "GET", f"{self._endpoint(project, name)}/keys")

    def revoke_endpoint_key(self, project: str, name: str, key_id: int) -> None:
        self._send("DELETE", f"{self._endpoint(project, name)}/keys/{part(key_id)}")

    def predict(
        self, project: str, name: str, instances: list[Any], *, version: str | None = None
    ) -> PredictionsPublic:
        """Call the endpoint with rows (objects by column, or lists in the model's order)."""
        headers = {VERSION_HEADER: version} if version else {}
        path = f"/serve/{part(project)}/{part(name)}/predict"
        return self._one(
            PredictionsPublic, "POST", path, json={"instances": instances}, headers=headers
        )
