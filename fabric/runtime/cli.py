"""Template parameters as command-line flags and back: `--max-depth 5` <-> `max_depth=5`.

The server turns validated parameters into a job's entrypoint with `to_args`; the template's
`python -m jobs.NAME` reads them back with `parse_args`. Scalars travel as their text, lists
and mappings as JSON, so both directions agree on every type a parameter model may hold.
Light on purpose: it runs inside Ray jobs and imports pydantic only.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from fabric.runtime import messages

M = TypeVar("M", bound=BaseModel)


class ParamsError(ValueError):
    """Parameters that do not fit the model; the message names each bad field."""


def flag(field: str) -> str:
    return "--" + field.replace("_", "-")


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


def to_args(params: BaseModel | Mapping[str, Any]) -> list[str]:
    """Every parameter that has a value, as `--flag value` pairs; None stays out."""
    values = params.model_dump(mode="json") if isinstance(params, BaseModel) else params
    args: list[str] = []
    for field, value in values.items():
        if value is not None:
            args += [flag(field), _text(value)]
    return args


def command(module: str, params: BaseModel, python: str = "python") -> str:
    """The shell command that runs the template module with these parameters (with `python`,
    the one on the PATH unless another environment's is named)."""
    return shlex.join([python, "-m", module, *to_args(params)])


def _json_fields(model: type[BaseModel]) -> set[str]:
    """Parameters whose text form is JSON: lists, mappings and nested models (not enums)."""
    schema = model.model_json_schema()
    defs = schema.get("$defs", {})

    def structured(part: dict[str, Any]) -> bool:
        if "$ref" in part:
            part = defs.get(part["$ref"].rsplit("/", 1)[-1], {})
        options = part.get("anyOf", [])
        return part.get("type") in ("array", "object") or any(map(structured, options))

    return {name for name, part in schema.get("properties", {}).items() if structured(part)}


def _name(where: str, loc: messages.Location) -> str:
    """Where a problem lies: the field's path, or the whole set when no field is to blame."""
    path = messages.dotted(loc)
    return f"{where}{path}" if path else where.rstrip(".") or "parameters"


def check_names(given: Iterable[str], known: Iterable[str], where: str = "") -> None:
    """ParamsError naming each given parameter that is not a known one, with the closest
    known names: the one check of parameter names, for built-in templates (here and on Ray),
    a project's own templates and pipeline tasks."""
    known = set(known)
    unknown = sorted(set(given) - known)
    problems = []
    for name in unknown:
        hint = messages.did_you_mean(name, known)
        problems.append(f"{where}{name}: no such parameter" + (f" ({hint})" if hint else ""))
    if problems:
        raise ParamsError("; ".join(problems))


def validate(model: type[M], raw: Mapping[str, Any], where: str = "") -> M:
    """Validate parameters given as JSON values or as text (from flags or `key=value`).

    Each problem is named `WHERE` + the field, e.g. `params.max_depth` with `where="params."`.
    """
    check_names(raw, model.model_fields, where)
    json_fields = _json_fields(model)
    values: dict[str, Any] = {}
    for field, value in raw.items():
        if field in json_fields and isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                raise ParamsError(f"{where}{field}: expects JSON, got {value!r}") from None
        values[field] = value
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise ParamsError(messages.describe(exc, lambda loc: _name(where, loc))) from None


def parse_args(model: type[M], argv: Sequence[str]) -> M:
    """`--flag value` pairs (also `--flag=value`; `_` or `-` in names) as the model."""
    raw: dict[str, str] = {}
    items = list(argv)
    while items:
        item = items.pop(0)
        if not item.startswith("--") or item == "--":
            raise ParamsError(f"expected --NAME VALUE, got {item!r}")
        name, sep, value = item[2:].partition("=")
        if not sep:
            if not items:
                raise ParamsError(f"{item} needs a value")
            value = items.pop(0)
        raw[name.replace("-", "_")] = value
    return validate(model, raw)
