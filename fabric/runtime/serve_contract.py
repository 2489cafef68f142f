"""What the Fabric server and its Serve applications agree on, typed once for both sides.

The server writes an endpoint's Serve application (`fabric.services.serving.serve_config`)
and the application reads it (`serve_apps.router`); the server's door passes calls on to it
and reads its answers (`fabric.api.routers.serve_door`); the backends read Serve's status of
it for the services. Each of those speaks through this module: the application's `args`,
the names of its deployments, the headers a call and its answer carry, and the shape of the
status. Serve replicas import it, so it needs nothing but the standard library and pydantic.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

# What a classic endpoint's application runs: the router, bound to one ModelServer per version.
IMPORT_PATH = "serve_apps.router:app_builder"
# What an llm endpoint's application runs, in the LLM environment: Ray Serve's LLM app.
LLM_IMPORT_PATH = "serve_apps.llm:app_builder"
# The router's deployment; each version's deployment is named by its `VersionArgs.name`.
ROUTER_DEPLOYMENT = "router"
# A call names the version it wants (`3` or `churn@3`); the server mirrors traffic with it.
VERSION_HEADER = "x-fabric-version"
# An answer names the version that gave it (`churn@3`), which is how the door counts calls.
ANSWERED_HEADER = "x-fabric-model-version"


class VersionArgs(BaseModel):
    """One deployed model version: what its `ModelServer` loads, and its share of traffic."""

    name: str = Field(min_length=1, description="its deployment's name in the application")
    model: str
    version: int
    uri: str
    framework: str
    entry: str | None = None
    features: list[str] | None = None
    weight: float = Field(ge=0)

    @property
    def label(self) -> str:
        return f"{self.model}@{self.version}"


class EndpointArgs(BaseModel):
    """The `args` of an endpoint's application."""

    endpoint: str = Field(description="PROJECT/NAME")
    # Read back from Serve's status, it tells the server whether Serve runs this spec yet.
    revision: int | None = None
    versions: list[VersionArgs] = Field(min_length=1)

    @model_validator(mode="after")
    def _distinct(self) -> EndpointArgs:
        for key in ("name", "label"):
            values = [getattr(version, key) for version in self.versions]
            if len(set(values)) != len(values):
                raise ValueError(f"two versions share a {key}: {', '.join(values)}")
        return self


class LlmArgs(BaseModel):
    """The `args` of an llm endpoint's application: one base model on vLLM, and how it runs."""

    endpoint: str = Field(description="PROJECT/NAME")
    revision: int | None = None
    model: str = Field(description="the id clients name as `model`: the registered model's")
    version: int = Field(description="the registered version served")
    uri: str = Field(description="the version's Hugging Face folder")
    engine: dict[str, Any] = Field(description="vLLM's engine arguments")
    deployment: dict[str, Any] = Field(description="Serve's options for the engine's replicas")
    bundle: dict[str, float] = Field(description="what each engine worker asks of Ray")
    # Where a call's adapter (`model: "BASE:ADAPTER"`) is found: it must adapt `base`.
    registry: str = Field(description="the project's registry folder (models/)")

    @property
    def base(self) -> dict[str, Any]:
        """The served version as an adapter's manifest names its base."""
        return {"model": self.model, "version": self.version}


class _Reported(BaseModel):
    # Serve reports more than Fabric reads, and adds fields between versions.
    model_config = ConfigDict(extra="ignore")


class DeploymentState(_Reported):
    """One deployment of an application, as Serve reports it."""

    status: str = Field(description="Serve's DeploymentStatus: HEALTHY, UPDATING, ...")
    message: str = ""
    replicas: list[dict[str, Any]] = Field(default_factory=list)


class ApplicationState(_Reported):
    """One application, as Serve reports it."""

    status: str = Field(description="Serve's ApplicationStatus: RUNNING, DEPLOY_FAILED, ...")
    message: str = ""
    deployed_app_config: dict[str, Any] | None = None
    deployments: dict[str, DeploymentState] = Field(default_factory=dict)

    @property
    def revision(self) -> int | None:
        """The endpoint revision Serve deployed the application from (`EndpointArgs`)."""
        args = (self.deployed_app_config or {}).get("args") or {}
        revision = args.get("revision")
        return revision if isinstance(revision, int) else None


# A project's applications by name: what a backend's `serve_status` returns.
ServeStatus = dict[str, ApplicationState]
_STATUS: TypeAdapter[ServeStatus] = TypeAdapter(ServeStatus)


def read_status(applications: dict[str, Any]) -> ServeStatus:
    """Serve's `applications` (its REST API's answer) in the contract's types."""
    return _STATUS.validate_python(applications)
