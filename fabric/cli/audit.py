"""`fabric audit`: who did what, for admins (everything) and project owners (their project)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from fabric.cli.credentials import connect
from fabric.cli.options import JsonOption, moment
from fabric.cli.output import print_json, print_table, when


def audit(
    project: Annotated[
        str | None, typer.Option(help="Only this project (its owners may read it).")
    ] = None,
    user: Annotated[str | None, typer.Option(help="Only events by this user.")] = None,
    action: Annotated[
        str | None, typer.Option(help="Only actions starting with this, e.g. quota or quota.set.")
    ] = None,
    since: Annotated[str | None, typer.Option(help="ISO 8601 time; from then on.")] = None,
    until: Annotated[str | None, typer.Option(help="ISO 8601 time; before then.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many events, newest first.")] = 100,
    json_: JsonOption = False,
) -> None:
    """Show the audit trail: a project's with --project, else the whole platform's (admins)."""
    since_at, until_at = moment(since, "--since"), moment(until, "--until")
    with connect() as client:
        if project:
            events = client.project_audit(
                project, user=user, action=action, since=since_at, until=until_at, limit=limit
            )
        else:
            events = client.platform_audit(
                user=user, action=action, since=since_at, until=until_at, limit=limit
            )
    if json_:
        print_json(events)
        return
    print_table(
        ["TIME", "ACTOR", "ACTION", "OBJECT", "PROJECT", "DETAIL"],
        (
            [
                when(e.at, seconds=True),
                e.actor,
                e.action,
                f"{e.object_type} {e.object_name}",
                e.project,
                json.dumps(e.detail, separators=(",", ":")) if e.detail else "",
            ]
            for e in events
        ),
        empty="no events",
        wrap=("OBJECT", "DETAIL"),
    )
