"""`fabric allocation`: resources admitted against a project's quotas, held until released."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from fabric.api.schemas.quotas import AllocationPublic
from fabric.cli.credentials import connect
from fabric.cli.options import JsonOption, amounts
from fabric.cli.output import pairs, print_fields, print_json, print_table, when

app = typer.Typer(no_args_is_help=True, help="Allocations of resources against quotas.")


class State(StrEnum):
    ACTIVE = "active"
    RELEASED = "released"


IdArgument = Annotated[int, typer.Argument(metavar="ID")]


def _row(allocation: AllocationPublic) -> list[object]:
    return [
        allocation.id,
        allocation.user,
        allocation.pool,
        pairs(allocation.resources),
        allocation.state,
        allocation.purpose,
        when(allocation.created_at),
        when(allocation.released_at),
    ]


COLUMNS = ["ID", "USER", "POOL", "RESOURCES", "STATE", "PURPOSE", "CREATED", "RELEASED"]


@app.command()
def create(
    project: str,
    resource: Annotated[
        list[str], typer.Option(help="NAME=AMOUNT, e.g. gpu=1; repeatable.", show_default=False)
    ],
    pool: Annotated[str | None, typer.Option(help="A pool granted to the project.")] = None,
    purpose: Annotated[str, typer.Option(help="What the resources are for.")] = "",
    expected_seconds: Annotated[
        float | None, typer.Option(help="How long it should run; counts against total quotas.")
    ] = None,
    json_: JsonOption = False,
) -> None:
    """Ask for resources; refused, with the reason, when a quota would be exceeded."""
    resources = amounts(resource, "--resource")
    with connect() as client:
        allocation = client.create_allocation(
            project, resources, pool=pool, purpose=purpose, expected_seconds=expected_seconds
        )
    if json_:
        print_json(allocation)
        return
    where = f" on pool {allocation.pool!r}" if allocation.pool else ""
    typer.echo(
        f"allocation {allocation.id} admitted in {project!r}: {pairs(allocation.resources)}{where}"
    )


@app.command("list")
def list_(
    project: str,
    state: Annotated[State | None, typer.Option(help="Only allocations in this state.")] = None,
    json_: JsonOption = False,
) -> None:
    """List a project's allocations, newest first."""
    with connect() as client:
        allocations = client.list_allocations(project, state=state.value if state else None)
    if json_:
        print_json(allocations)
        return
    print_table(
        COLUMNS,
        (_row(a) for a in allocations),
        empty="no allocations",
        wrap=("RESOURCES", "PURPOSE"),
    )


@app.command()
def show(project: str, allocation_id: IdArgument, json_: JsonOption = False) -> None:
    """Show one allocation."""
    with connect() as client:
        allocation = client.get_allocation(project, allocation_id)
    if json_:
        print_json(allocation)
    else:
        print_fields(dict(zip((c.lower() for c in COLUMNS), _row(allocation), strict=True)))


@app.command()
def release(project: str, allocation_id: IdArgument) -> None:
    """Release an allocation: its resources are free again and its use is metered."""
    with connect() as client:
        allocation = client.release_allocation(project, allocation_id)
    typer.echo(f"allocation {allocation.id} {allocation.state}")
