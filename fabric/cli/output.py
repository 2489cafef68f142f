"""Printing results: raw JSON for scripts, Rich tables for people."""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import UTC, datetime

import typer
from pydantic_core import to_jsonable_python
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text


def print_json(data: object) -> None:
    """The API's answer as it sent it: a response model (or a list of them) in its JSON form."""
    typer.echo(json.dumps(to_jsonable_python(data), indent=2))


def _console() -> Console:
    # Made per call so that it writes to the current stdout (which tests replace).
    console = Console(highlight=False)
    if not console.is_terminal:
        # Piped into a file or another program: no screen width to fit, so cut nothing.
        console.width = max(console.width, 200)
    return console


def print_table(
    columns: Sequence[str],
    rows: Iterable[Iterable[object]],
    *,
    empty: str,
    wrap: Collection[str] = (),
) -> None:
    """A table, or the `empty` line when there are no rows; cells are never read as markup.

    Only the free-text columns named in `wrap` may wrap when the terminal is narrow, so that
    names and times stay on one line.
    """
    rows = list(rows)
    if not rows:
        typer.echo(empty)
        return
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for column in columns:
        if column in wrap:
            table.add_column(column, min_width=12, overflow="fold")
        else:
            table.add_column(column, no_wrap=True, min_width=len(column))
    for row in rows:
        table.add_row(*(Text(cell(value)) for value in row))
    _console().print(table)


def print_fields(fields: Mapping[str, object]) -> None:
    """One record as NAME  VALUE lines."""
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    for name, value in fields.items():
        table.add_row(Text(name), Text(cell(value)))
    _console().print(table)


def cell(value: object) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return number(value)
    if isinstance(value, dict):
        return pairs(value)
    if isinstance(value, list):
        return ", ".join(cell(item) for item in value)
    return str(value)


def number(value: float) -> str:
    return f"{value:g}"


def when(value: datetime | None, *, seconds: bool = False) -> str:
    """An API timestamp in UTC, e.g. 2025-01-31 14:02 (to the minute, to keep tables narrow)."""
    if value is None:
        return "-"
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def pairs(values: Mapping[str, object]) -> str:
    """{"gpu": 8, "cpu": 2} as gpu=8, cpu=2."""
    return ", ".join(f"{key}={cell(value)}" for key, value in values.items())


def describe_workers(count: int, resources: dict[str, float]) -> str | None:
    """A job's or template's Ray workers, e.g. `2 x cpu=1`; None when it starts none."""
    return f"{count} x {pairs(resources)}" if count else None
