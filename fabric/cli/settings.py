"""Settings as the CLI reads them: a bad FABRIC_ variable is a one-line error, not a trace."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from fabric.cli.errors import CliError
from fabric.config import Settings
from fabric.runtime import messages


def load_settings(**overrides: Any) -> Settings:
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = messages.describe(exc, _variable)
        raise CliError(f"invalid settings: {problems}") from None


def _variable(loc: messages.Location) -> str:
    """The environment variable of the setting a problem lies in."""
    return f"FABRIC_{str(loc[0]).upper()}" if loc else ""
