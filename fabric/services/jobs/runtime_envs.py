"""Ray runtime environments as Fabric accepts them: from a job request, or a template's.

Fabric sets the `FABRIC_*` variables itself and keeps code sources to the project's packages
or remote storage (see `packages`), whoever gives the environment.
"""

from __future__ import annotations

from typing import Any

from fabric.config import Settings
from fabric.errors import InvalidSpec
from fabric.runtime import environment
from fabric.services.jobs import packages

KEYS = {"env_vars", "pip", "working_dir", "py_modules", "excludes", "config"}


def check(settings: Settings, project: str, runtime_env: dict[str, Any]) -> None:
    unknown = set(runtime_env) - KEYS - {"py_executable"}
    if unknown:
        raise InvalidSpec(
            f"runtime_env may not set {', '.join(sorted(unknown))}; "
            f"allowed: {', '.join(sorted(KEYS))}"
        )
    env_vars = runtime_env.get("env_vars", {})
    if not isinstance(env_vars, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in env_vars.items()
    ):
        raise InvalidSpec("runtime_env.env_vars must map names to strings")
    reserved = sorted(k for k in env_vars if k.startswith(environment.PREFIX))
    if reserved:
        raise InvalidSpec(f"runtime_env.env_vars: {', '.join(reserved)} are set by Fabric")
    _check_python(settings, runtime_env)
    packages.check_sources(settings, project, runtime_env)


def _check_python(settings: Settings, runtime_env: dict[str, Any]) -> None:
    """`py_executable` only as a template of the LLM environment sets it: that environment's
    Python, never a program of the caller's choosing."""
    if "py_executable" not in runtime_env:
        return
    llm = settings.llm_executable
    if llm is None or runtime_env["py_executable"] != str(llm):
        raise InvalidSpec(
            "runtime_env.py_executable: only the LLM environment's Python (FABRIC_LLM_PYTHON), "
            "as the templates that run in it set it"
        )


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """A template's environment under a job's: the job's keys win, variables and pip
    packages add up (the job's variable wins a clash)."""
    merged = {**base, **override}
    if "env_vars" in base or "env_vars" in override:
        merged["env_vars"] = {**base.get("env_vars", {}), **override.get("env_vars", {})}
    if "pip" in base and "pip" in override:
        merged["pip"] = [*base["pip"], *override["pip"]]
    return merged
