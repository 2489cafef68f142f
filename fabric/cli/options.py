"""Options that several commands share, and parsing of their NAME=VALUE values."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from fabric.cli.errors import CliError

JsonOption = Annotated[bool, typer.Option("--json", help="Print the raw JSON of the API.")]
PasswordStdinOption = Annotated[
    bool,
    typer.Option("--password-stdin", help="Read the password from the first line of stdin."),
]


def split_pairs(values: list[str] | None, option: str) -> dict[str, str]:
    result: dict[str, str] = {}
    for value in values or []:
        key, sep, rest = value.partition("=")
        if not sep or not key.strip() or not rest.strip():
            raise CliError(f"{option} expects KEY=VALUE, got {value!r}")
        result[key.strip()] = rest.strip()
    return result


def amounts(values: list[str] | None, option: str) -> dict[str, float]:
    """--resource gpu=1 --resource cpu=2 as {"gpu": 1.0, "cpu": 2.0}."""
    result: dict[str, float] = {}
    for key, value in split_pairs(values, option).items():
        try:
            result[key] = float(value)
        except ValueError:
            raise CliError(f"{option} {key}={value}: the amount must be a number") from None
    return result


def moment(value: str | None, option: str) -> datetime | None:
    """An ISO 8601 time; without an offset it is read as local time."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise CliError(
            f"{option} expects an ISO 8601 time, e.g. 2025-01-31T09:00, got {value!r}"
        ) from None
    return parsed if parsed.tzinfo else parsed.astimezone()


def read_mapping(path: Path, what: str) -> dict[str, Any]:
    """A YAML file holding a mapping (a pipeline's or an endpoint's spec), or one error line."""
    try:
        spec = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        # YAML's message spans lines (with a caret under the spot): one line here.
        raise CliError(f"{path} is not valid YAML: {' '.join(str(exc).split())}") from None
    if not isinstance(spec, dict):
        raise CliError(f"{path}: {what}")
    return spec
