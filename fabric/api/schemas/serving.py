"""Request and response shapes of endpoints, their revisions and keys."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from fabric.states import EndpointStatus


class EndpointPublic(BaseModel):
    name: str
    url: str = Field(description="where to call it: POST URL/predict")
    revision: int
    healthy_revision: int | None = Field(description="the newest revision Serve ran")
    status: EndpointStatus = Field(
        description="Serve's state of the endpoint's application; PENDING when Serve has not "
        "taken the spec yet, DEPLOYING until Serve runs the current revision, UNKNOWN when "
        "Serve cannot be asked"
    )
    message: str
    spec: dict[str, Any]
    resources: dict[str, float] = Field(description="held against the project's quota")
    deployments: dict[str, Any] = Field(description="each version's deployment as Serve has it")
    metrics: dict[str, Any] = Field(description="calls through this server since it started")
    user: str
    created_at: datetime
    updated_at: datetime


class EndpointTraffic(BaseModel):
    weights: dict[str, float] = Field(
        description='weight per version, as "MODEL@VERSION" or "VERSION": {"3": 80, "4": 20}'
    )


class EndpointPromote(BaseModel):
    version: str | None = Field(
        default=None, description="MODEL@VERSION or VERSION; default the newest served"
    )


class EndpointRollback(BaseModel):
    revision: int | None = Field(default=None, description="default the one before")


class EndpointRevisionPublic(BaseModel):
    revision: int
    action: str
    message: str
    spec: dict[str, Any]
    user: str | None
    created_at: datetime


class EndpointKeyCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100)


class EndpointKeyPublic(BaseModel):
    id: int
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


class EndpointKeyCreated(EndpointKeyPublic):
    key: str = Field(description="shown once: send it as 'Authorization: Bearer KEY'")


class PredictionsPublic(BaseModel):
    """An endpoint's answer to `POST /serve/PROJECT/NAME/predict` with `{"instances": [...]}`:
    Serve's, passed on by the server's door, so no route declares it."""

    predictions: list[Any] = Field(description="one per instance, in order")
    model: str = Field(description="the registered model of the version that answered")
    version: int = Field(description="that version's number")
