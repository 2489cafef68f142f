"""`fabric quota`: the limits of a project and of users in it, and how much is used."""

from __future__ import annotations

from typing import Annotated

import typer

from fabric.api.schemas.quotas import QuotaPublic
from fabric.cli.credentials import connect
from fabric.cli.options import JsonOption
from fabric.cli.output import number, print_json, print_table
from fabric.quota.engine import Kind, Period

app = typer.Typer(no_args_is_help=True, help="Quotas: what a project, or a user in it, may use.")

KindOption = Annotated[
    Kind,
    typer.Option(help="single: per request; concurrent: held at once; total: per period."),
]
UserOption = Annotated[
    str | None, typer.Option(help="A member the limit applies to; the whole project if not given.")
]


def _scope(user: str | None) -> str:
    return f"user {user!r}" if user else "project"


def _unit(kind: Kind, period: Period | None) -> str:
    if kind is Kind.SINGLE:
        return " per request"
    if kind is Kind.CONCURRENT:
        return " at once"
    return f" resource-seconds per {period.value}" if period else " resource-seconds"


@app.command("set")
def set_(
    project: str,
    resource: Annotated[str, typer.Argument(help="cpu (cores), memory (GiB), gpu, npu, ...")],
    limit: Annotated[float, typer.Argument(help="Amount; resource-seconds for total quotas.")],
    kind: KindOption,
    period: Annotated[
        Period | None, typer.Option(help="The period a total quota resets after.")
    ] = None,
    user: UserOption = None,
) -> None:
    """Set a limit (project-wide: admins; for a user: project owners)."""
    with connect() as client:
        client.set_quota(
            project,
            resource,
            kind.value,
            limit,
            period=period.value if period else None,
            user=user,
        )
    typer.echo(
        f"{_scope(user)} {kind.value} quota on {resource} in {project!r} is now "
        f"{number(limit)}{_unit(kind, period)}"
    )


def _percent(quota: QuotaPublic) -> str:
    if quota.kind is Kind.SINGLE or not quota.limit:
        return "-"
    return f"{100 * quota.used / quota.limit:.0f}%"


@app.command()
def show(project: str, json_: JsonOption = False) -> None:
    """Show a project's limits with what is used of each now."""
    with connect() as client:
        quotas = client.show_quotas(project)
    if json_:
        print_json(quotas)
        return
    print_table(
        ["SCOPE", "RESOURCE", "KIND", "PERIOD", "LIMIT", "USED", "USE"],
        (
            [
                _scope(q.user),
                q.resource,
                q.kind,
                q.period,
                number(q.limit),
                "-" if q.kind is Kind.SINGLE else number(q.used),
                _percent(q),
            ]
            for q in quotas
        ),
        empty=f"project {project!r} has no quotas",
    )


@app.command()
def remove(project: str, resource: str, kind: KindOption, user: UserOption = None) -> None:
    """Remove a limit."""
    with connect() as client:
        client.remove_quota(project, resource, kind.value, user=user)
    typer.echo(f"removed the {_scope(user)} {kind.value} quota on {resource} in {project!r}")
