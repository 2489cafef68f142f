"""Response shapes of the liveness and readiness probes."""

from __future__ import annotations

from pydantic import BaseModel, Field


class HealthPublic(BaseModel):
    status: str = Field(description="ok whenever the server answers")


class ReadinessPublic(BaseModel):
    status: str = Field(description="ready, or unavailable (with HTTP 503)")
    database: str = Field(description="ok, or why the database is not ready")
    ray: str = Field(description="ok with Ray's version, or why the cluster does not answer")
