"""Settings as the CLI reads them: a bad FABRIC_ variable is a one-line error, not a trace."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from fabric.cli.errors import CliError
from fabric.config import Settings


def load_settings(**overrides: Any) -> Settings:
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            (f"FABRIC_{str(error['loc'][0]).upper()}: " if error["loc"] else "") + error["msg"]
            for error in exc.errors()
        )
        raise CliError(f"invalid settings: {problems}") from None
