"""The built-in job templates: found in the `jobs` package, described, and turned into jobs.

Each module or package `jobs/NAME` that declares a `TEMPLATE` is one template, named with
hyphens for underscores (`jobs/data_import.py` is `data-import`). Listing imports only the
modules' top level: templates keep their heavy imports inside their run function.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import Any

import jobs as jobs_package
from fabric.config import Settings
from fabric.errors import Conflict, InvalidSpec, NotFound
from fabric.runtime import LLM_ENVIRONMENT, Template
from fabric.runtime.cli import ParamsError, command, validate

LLM_MISSING = "the LLM environment is not installed: run `make install` or set FABRIC_LLM_PYTHON"


@dataclass(frozen=True)
class Found:
    """A template and the module that runs it."""

    module: str
    template: Template


def _discover() -> dict[str, Found]:
    found = {}
    for info in pkgutil.iter_modules(jobs_package.__path__):
        if info.name.startswith("_"):
            continue
        module = f"{jobs_package.__name__}.{info.name}"
        template = getattr(importlib.import_module(module), "TEMPLATE", None)
        if isinstance(template, Template):
            found[template.name] = Found(module, template)
    return found


def list_all() -> list[Found]:
    return sorted(
        _discover().values(), key=lambda found: (found.template.group, found.template.name)
    )


def get(name: str) -> Found:
    found = _discover().get(name)
    if found is None:
        raise NotFound(f"template {name!r} not found; `fabric template list` shows them")
    return found


def describe(found: Found) -> dict[str, Any]:
    """A template as the API shows it; its parameters as JSON Schema."""
    template = found.template
    return {
        "name": template.name,
        "group": template.group,
        "description": template.description,
        "module": found.module,
        "parameters": template.params.model_json_schema(),
        "resources": dict(template.resources),
        "workers": template.workers,
        "worker_resources": dict(template.worker_resources),
        "outputs": dict(template.outputs),
        "environment": template.environment,
    }


@dataclass(frozen=True)
class Prepared:
    """A template request made concrete: the command to run and every parameter's value."""

    # The template as the job records it: a built-in's name, a custom one's exact version.
    reference: str
    entrypoint: str
    params: dict[str, Any]
    resources: dict[str, float]
    workers: int
    worker_resources: dict[str, float]
    runtime_env: dict[str, Any] = field(default_factory=dict)


def python_of(settings: Settings, template: Template) -> str | None:
    """The Python the template's job runs in: None for the cluster's own, the LLM
    environment's for `llm` (Conflict when this server has none)."""
    if template.environment != LLM_ENVIRONMENT:
        return None
    python = settings.llm_executable
    if python is None:
        raise Conflict(f"template {template.name}: {LLM_MISSING}")
    # The local head runs jobs on this machine, so a Python that is not here is a mistake; on
    # KubeRay the path is the pods' (an image with vLLM), which the server cannot see.
    if settings.backend == "local" and not python.exists():
        raise Conflict(f"template {template.name}: {LLM_MISSING} (FABRIC_LLM_PYTHON: no {python})")
    return str(python)


def prepare(settings: Settings, name: str, params: dict[str, Any]) -> Prepared:
    """Validate `params` against the template's model (InvalidSpec naming the bad field).

    A template of the LLM environment runs with its Python, as the entrypoint's interpreter
    and as the job's `runtime_env.py_executable`, which the workers it starts inherit."""
    try:
        found = get(name)
    except NotFound as exc:
        raise InvalidSpec(f"template: {exc.message}") from None
    try:
        valid = validate(found.template.params, params, where="params.")
    except ParamsError as exc:
        raise InvalidSpec(str(exc)) from None
    python = python_of(settings, found.template)
    return Prepared(
        reference=name,
        entrypoint=command(found.module, valid, python or "python"),
        params=valid.model_dump(mode="json"),
        resources=dict(found.template.resources),
        workers=found.template.workers,
        worker_resources=dict(found.template.worker_resources),
        runtime_env={"py_executable": python} if python else {},
    )
