"""`Client`: one method per route of the REST API, each returning the API's own response
model. The methods live with their domain in the modules beside this one."""

from __future__ import annotations

from fabric.api.schemas.health import HealthPublic, ReadinessPublic
from fabric.sdk.jobs import JobsApi
from fabric.sdk.packages import PackagesApi
from fabric.sdk.pipelines import PipelinesApi
from fabric.sdk.quotas import QuotasApi
from fabric.sdk.registry import RegistryApi
from fabric.sdk.serving import ServingApi
from fabric.sdk.templates import TemplatesApi
from fabric.sdk.tenancy import TenancyApi


class Client(
    TenancyApi,
    QuotasApi,
    TemplatesApi,
    JobsApi,
    PackagesApi,
    PipelinesApi,
    RegistryApi,
    ServingApi,
):
    """A Fabric server at `url`, called with a bearer `token` (a login session or API token);
    every refusal raises `ApiError`."""

    def health(self) -> HealthPublic:
        return self._one(HealthPublic, "GET", "/healthz")

    def ready(self) -> ReadinessPublic:
        """Ready when the database is at the code's schema and the Ray cluster answers;
        ApiError 503 otherwise."""
        return self._one(ReadinessPublic, "GET", "/readyz")
