"""`fabric usage`: what a project consumed, in resource-hours and tokens, and what it cost."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from fabric.cli.credentials import connect
from fabric.cli.options import JsonOption, moment
from fabric.cli.output import print_json, print_table


class Group(StrEnum):
    USER = "user"
    RESOURCE = "resource"
    ENDPOINT = "endpoint"
    KEY = "key"


def usage(
    project: str,
    since: Annotated[str | None, typer.Option(help="ISO 8601 time; use ending from then.")] = None,
    until: Annotated[str | None, typer.Option(help="ISO 8601 time; use ending before.")] = None,
    group_by: Annotated[
        Group | None,
        typer.Option(
            help="Per user and resource (default), or per resource; per endpoint or per "
            "endpoint and key: llm endpoints' tokens."
        ),
    ] = None,
    json_: JsonOption = False,
) -> None:
    """Show a project's metered use; cost is at the server's rates, if it has any."""
    since_at, until_at = moment(since, "--since"), moment(until, "--until")
    with connect() as client:
        lines = client.usage(
            project, since=since_at, until=until_at, group_by=group_by.value if group_by else None
        )
    if json_:
        print_json(lines)
        return
    if group_by in (Group.ENDPOINT, Group.KEY):
        print_table(
            ["ENDPOINT", "KEY", "RESOURCE", "TOKENS", "COST"],
            ([u.endpoint, u.key, u.resource, u.tokens, u.cost] for u in lines),
            empty="no tokens",
        )
        return
    print_table(
        ["USER", "RESOURCE", "RESOURCE-HOURS", "TOKENS", "COST"],
        (
            [
                u.user,
                u.resource,
                None if u.tokens is not None else u.resource_seconds / 3600,
                u.tokens,
                u.cost,
            ]
            for u in lines
        ),
        empty="no usage",
    )
