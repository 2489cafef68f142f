"""Every error a user can act on becomes one line on stderr, here and nowhere else.

A command that fails exits 1; a command line Click cannot parse (an unknown command or
option, a missing argument) exits 2, Click's code for usage errors, as most Unix tools do, so
that a script can tell a mistyped command from one the server refused (README.md says both).
"""

from __future__ import annotations

from typing import Any, NoReturn

import typer
from typer import _click  # Typer vendors Click and does not re-export its usage errors.
from typer.core import TyperGroup

from fabric.sdk import ApiError


class CliError(Exception):
    """A mistake the user can fix (a bad option, a missing login); the message says how."""


def _api_message(exc: ApiError) -> str:
    if exc.status_code == 401 and "log in" not in exc.detail:
        return f"{exc.detail} (run `fabric login`)"
    return exc.detail


def _fail(message: str, code: int = 1) -> NoReturn:
    # typer.echo, not Rich: a message like "expected [a, b]" must print as it is.
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


class ErrorLineGroup(TyperGroup):
    """The root group: it runs every subcommand, so it turns their errors into one line.

    Anything else is a bug in Fabric and keeps its traceback (never with local variables,
    which may hold passwords or tokens).
    """

    def invoke(self, ctx: _click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except _click.exceptions.NoArgsIsHelpError:
            raise
        except _click.exceptions.UsageError as exc:
            hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
            _fail(exc.format_message() + hint, exc.exit_code)
        except typer.TyperException as exc:
            _fail(exc.format_message(), exc.exit_code)
        except ApiError as exc:
            _fail(_api_message(exc))
        except CliError as exc:
            _fail(str(exc))
        except KeyboardInterrupt:
            _fail("interrupted", 130)
