"""Request and response shapes of job templates, built-in and registered."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class TemplatePublic(BaseModel):
    name: str = Field(description="a built-in's name, or PROJECT/NAME for a project's own")
    group: str
    description: str
    module: str | None = Field(
        default=None, description="a built-in runs as `python -m MODULE --param value ...`"
    )
    command: str | None = Field(
        default=None, description="a custom template runs `COMMAND --param value ...`"
    )
    project: str | None = Field(default=None, description="the project that registered it")
    version: int | None = Field(default=None, description="a custom template's version")
    published: bool = Field(default=False, description="whether every project may use it")
    parameters: dict[str, Any] = Field(description="JSON Schema of the parameters")
    resources: dict[str, float] = Field(description="what a job asks for when it names none")
    workers: int = Field(description="Ray workers beside the driver when a job names none")
    worker_resources: dict[str, float] = Field(description="what each worker holds")
    outputs: dict[str, str] = Field(description="names written to the run's outputs.json")
    environment: str = Field(
        default="default",
        description="the Python it runs in: `default`, the cluster's, or `llm`, the LLM "
        "environment's (FABRIC_LLM_PYTHON)",
    )


class CustomTemplateCreate(BaseModel):
    name: str = Field(description="lowercase letters, digits and '-'; versions count up")
    command: str = Field(
        max_length=10000,
        description="what a job runs, with each parameter appended as --name value, "
        "e.g. 'python train.py'",
    )
    parameters: dict[str, Any] = Field(
        default_factory=lambda: {"type": "object", "properties": {}},
        description="JSON Schema (an object) the parameters must fit; defaults are filled in",
    )
    description: str = Field(default="", max_length=2000)
    group: str = Field(default="custom", max_length=63)
    resources: dict[str, float] | None = Field(default=None, description="default: cpu 1")
    workers: int = Field(default=0, ge=0, le=256)
    worker_resources: dict[str, float] | None = None
    runtime_env: dict[str, Any] = Field(
        default_factory=dict,
        description="the code (working_dir: a package of the project), pip, env_vars",
    )
    published: bool = Field(default=False, description="let every project use it (owners)")


class CustomTemplateUpdate(BaseModel):
    published: bool
