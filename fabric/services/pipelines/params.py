"""Task parameters that refer to the run: its globals, its logical date, upstream outputs.

A parameter may hold Jinja expressions, evaluated in a sandbox just before its task starts:
`{{ ds }}`, `{{ ts }}`, `{{ macros.ds_add(ds, -1) }}`, `{{ globals.lr }}`,
`{{ tasks.train.outputs.model_uri }}`. A value that is exactly one `{{ expression }}` keeps
the expression's type (a number stays a number, a dict a dict); any other text renders to a
string. The sandbox refuses attributes that reach into Python's internals, so a pipeline's
author cannot run code in the server.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from jinja2 import StrictUndefined, TemplateError, Undefined, nodes
from jinja2.sandbox import SandboxedEnvironment

_ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
_ONE_EXPRESSION = re.compile(r"^\s*\{\{(?P<expression>(?:(?!\}\}).)*)\}\}\s*$", re.DOTALL)
# Names every parameter may use, besides `globals` and `tasks`.
RUN_NAMES = frozenset({"ds", "ds_nodash", "ts", "logical_date", "run_id", "macros", "timedelta"})


class ParamError(Exception):
    """A parameter's expression is malformed, or refers to something that is not there."""


def is_templated(value: Any) -> bool:
    return any("{{" in text or "{%" in text for text in _strings(value))


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


@dataclass(frozen=True)
class References:
    """What a value's expressions name: upstream tasks, globals, and any other name."""

    tasks: frozenset[str]
    globals: frozenset[str]
    names: frozenset[str]


def references(value: Any) -> References:
    """Parse every expression in `value`; ParamError when one does not parse."""
    tasks: set[str] = set()
    variables: set[str] = set()
    names: set[str] = set()
    for text in _strings(value):
        try:
            tree = _ENV.parse(text)
        except TemplateError as exc:
            raise ParamError(f"cannot parse {text!r}: {exc}") from None
        for name in tree.find_all(nodes.Name):
            if name.ctx == "load":
                names.add(name.name)
        for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
            target = node.node
            if not isinstance(target, nodes.Name):
                continue
            key = node.attr if isinstance(node, nodes.Getattr) else _constant(node.arg)
            if key is None:
                raise ParamError(f"{text!r}: name a {target.name} entry literally")
            if target.name == "tasks":
                tasks.add(key)
            elif target.name == "globals":
                variables.add(key)
    return References(frozenset(tasks), frozenset(variables), frozenset(names))


def _constant(node: nodes.Node) -> str | None:
    return node.value if isinstance(node, nodes.Const) and isinstance(node.value, str) else None


def context(
    logical_date: datetime,
    run_id: int,
    variables: dict[str, Any],
    outputs: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    """What expressions see for one run: `outputs` holds each finished task's outputs."""
    ds = logical_date.strftime("%Y-%m-%d")
    return {
        "ds": ds,
        "ds_nodash": ds.replace("-", ""),
        "ts": logical_date.isoformat(),
        "logical_date": logical_date,
        "run_id": run_id,
        "macros": {"ds_add": _ds_add, "ds_format": _ds_format},
        "timedelta": timedelta,
        "globals": variables,
        "tasks": {name: {"outputs": found} for name, found in outputs.items()},
    }


def _ds_add(ds: str, days: int) -> str:
    """A YYYY-MM-DD date moved by `days` (negative for earlier), as Airflow's macro does."""
    return (datetime.strptime(ds, "%Y-%m-%d") + timedelta(days=days)).strftime("%Y-%m-%d")


def _ds_format(ds: str, source: str, target: str) -> str:
    return datetime.strptime(ds, source).strftime(target)


def render(value: Any, scope: dict[str, Any]) -> Any:
    """The value with its expressions evaluated in `scope`; ParamError saying what failed."""
    if isinstance(value, dict):
        return {key: render(item, scope) for key, item in value.items()}
    if isinstance(value, list):
        return [render(item, scope) for item in value]
    if not isinstance(value, str) or not is_templated(value):
        return value
    try:
        single = _ONE_EXPRESSION.match(value)
        if single is None:
            return _ENV.from_string(value).render(scope)
        result = _ENV.compile_expression(single["expression"], undefined_to_none=False)(**scope)
        if isinstance(result, Undefined):
            result._fail_with_undefined_error()
        return result
    except Exception as exc:
        # An expression fails as Python would (1 // 0, None + 1): say which, and how.
        raise ParamError(f"{value!r}: {type(exc).__name__}: {exc}") from None
