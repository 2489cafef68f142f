"""`fabric dashboard`: open a project's Ray dashboard in the browser, logged in."""

from __future__ import annotations

import webbrowser
from typing import Annotated

import typer

from fabric.cli.credentials import connect


def dashboard(
    project: str,
    no_browser: Annotated[
        bool, typer.Option("--no-browser", help="Print the link instead of opening it.")
    ] = False,
) -> None:
    """Open the Ray dashboard of the project's cluster (the link works once, for a minute)."""
    with connect() as client:
        link = client.open_dashboard(project)
    if no_browser or not webbrowser.open(link):
        typer.echo(link)
