"""Request and response shapes of the model registry."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class ModelVersionCreate(BaseModel):
    source: str = Field(
        description="the model: a job id, a run folder, or a model file or folder, in the "
        "project's storage or yours (relative paths are the project's)"
    )
    framework: str | None = Field(
        default=None, description="how it was saved; by default what its run recorded"
    )
    entry: str | None = Field(
        default=None, max_length=200, description="a custom model's 'module:Class'"
    )
    base: str | None = Field(
        default=None,
        max_length=200,
        description="a lora adapter's base, the llm version it adapts: MODEL@VERSION (an alias "
        "is pinned to its version); by default the base its run recorded",
    )
    description: str = Field(default="", max_length=2000)
    tags: dict[str, str] = Field(default_factory=dict)


class ModelVersionPublic(BaseModel):
    model: str
    version: int
    framework: str
    uri: str
    entry: str | None
    base: str | None = Field(
        default=None, description="a lora adapter's base, the llm version it adapts: MODEL@VERSION"
    )
    sha256: str
    signature: dict[str, Any]
    metrics: dict[str, Any]
    params: dict[str, Any] | None
    tags: dict[str, str]
    description: str
    aliases: list[str]
    lineage: dict[str, Any] = Field(
        description="where it came from: source path, job, pipeline run, dataset"
    )
    user: str | None
    created_at: datetime


class RegisteredModelPublic(BaseModel):
    name: str
    description: str
    latest_version: int | None
    aliases: dict[str, int]
    versions: list[ModelVersionPublic]
    created_at: datetime


class AliasSet(BaseModel):
    version: int = Field(ge=1)
