"""Logging in and out, and asking who the saved login is."""

from __future__ import annotations

from typing import Annotated

import typer

from fabric.cli import credentials, passwords
from fabric.cli.errors import CliError
from fabric.cli.options import JsonOption, PasswordStdinOption
from fabric.cli.output import print_fields, print_json
from fabric.sdk import ApiError, Client


def login(
    url: Annotated[
        str | None,
        typer.Option(help="Server URL; default FABRIC_URL, else http://FABRIC_HOST:FABRIC_PORT."),
    ] = None,
    username: Annotated[str | None, typer.Option(help="Prompted for when not given.")] = None,
    password_stdin: PasswordStdinOption = False,
) -> None:
    """Log in and save the session in FABRIC_HOME/credentials.json (mode 0600)."""
    url = (url or credentials.default_url()).rstrip("/")
    name: str = username or typer.prompt("Username")
    password = passwords.read("Password", use_stdin=password_stdin)
    try:
        client = Client.login(url, name, password)
    except ApiError as exc:
        # Said as it is: the usual 401 hint, "run `fabric login`", is no help here.
        raise CliError(exc.detail) from None
    with client:
        saved = credentials.save(client.url, client.token or "")
    typer.echo(f"logged in to {url} as {name} (saved in {saved})")


def logout() -> None:
    """End the saved session on the server and delete the saved login."""
    saved = credentials.load()
    if saved is None:
        raise CliError(credentials.NOT_LOGGED_IN)
    # Only the saved session is ended: FABRIC_TOKEN may be an API token meant to live on.
    with Client(saved["url"], saved["token"]) as client:
        try:
            client.logout()
        except ApiError as exc:
            if exc.status_code != 401:
                raise
    credentials.remove()
    typer.echo(f"logged out of {saved['url']}")


def whoami(json_: JsonOption = False) -> None:
    """Show the user behind the current token."""
    with credentials.connect() as client:
        me = client.me()
        url = client.url
    if json_:
        print_json(me)
        return
    print_fields({"user": me.username, "server": url, "admin": me.is_admin, "email": me.email})
