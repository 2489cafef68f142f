"""`fabric db`: the database schema, for operators (the server also migrates at start)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import typer

from fabric.cli.errors import CliError
from fabric.cli.settings import load_settings

if TYPE_CHECKING:
    from sqlalchemy import Engine

app = typer.Typer(no_args_is_help=True, help="The database schema.")

T = TypeVar("T")


def _with_engine(action: Callable[[Engine], T]) -> tuple[str, T]:
    """Run `action` on the configured database; its URL is returned without the password."""
    # Imported here, not at the top: client commands should not pay to load SQLAlchemy.
    from alembic.util import CommandError
    from sqlalchemy.exc import SQLAlchemyError

    from fabric.db.engine import make_engine

    engine = make_engine(load_settings())
    url = engine.url.render_as_string(hide_password=True)
    try:
        return url, action(engine)
    except (SQLAlchemyError, CommandError) as exc:
        reason = " ".join(str(getattr(exc, "orig", None) or exc).split())
        raise CliError(f"database {url}: {reason}") from None
    finally:
        engine.dispose()


@app.command()
def upgrade() -> None:
    """Apply every pending migration."""
    from fabric.db import migrate

    def run(engine: Engine) -> str | None:
        migrate.upgrade(engine)
        return migrate.current(engine)

    url, revision = _with_engine(run)
    typer.echo(f"database {url} is at revision {revision} (head)")


@app.command()
def current() -> None:
    """Print the database's schema revision and the code's head revision."""
    from fabric.db import migrate

    url, revision = _with_engine(migrate.current)
    typer.echo(f"database: {url}")
    typer.echo(f"current:  {revision or 'none (empty database)'}")
    typer.echo(f"head:     {migrate.head()}")
