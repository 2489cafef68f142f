"""`fabric token`: personal API tokens for scripts and CI."""

from __future__ import annotations

from typing import Annotated

import typer

from fabric.cli.credentials import connect
from fabric.cli.options import JsonOption
from fabric.cli.output import print_json, print_table, when

app = typer.Typer(no_args_is_help=True, help="Your personal API tokens.")


@app.command()
def create(
    name: str,
    days: Annotated[
        int | None, typer.Option(help="Lifetime in days; the server's default when not given.")
    ] = None,
) -> None:
    """Create a token; its secret is printed once, alone on stdout, so scripts can capture it."""
    with connect() as client:
        token = client.create_token(name, days=days)
    typer.echo(
        f"created token {token.name!r} (id {token.id}), expires {when(token.expires_at)} UTC:",
        err=True,
    )
    typer.echo(token.token)
    typer.echo("copy it now: the secret is shown only this once", err=True)


@app.command("list")
def list_(json_: JsonOption = False) -> None:
    """List your API tokens (never their secrets)."""
    with connect() as client:
        tokens = client.list_tokens()
    if json_:
        print_json(tokens)
        return
    print_table(
        ["ID", "NAME", "PREFIX", "CREATED", "EXPIRES", "LAST USED", "REVOKED"],
        (
            [
                t.id,
                t.name,
                t.prefix,
                when(t.created_at),
                when(t.expires_at),
                when(t.last_used_at),
                when(t.revoked_at),
            ]
            for t in tokens
        ),
        empty="no API tokens",
        wrap=("NAME",),
    )


@app.command()
def revoke(token_id: Annotated[int, typer.Argument(metavar="ID")]) -> None:
    """Revoke one of your tokens; it stops working at once."""
    with connect() as client:
        client.revoke_token(token_id)
    typer.echo(f"revoked token {token_id}")
