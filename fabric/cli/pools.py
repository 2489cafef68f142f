"""`fabric pool`: resource pools (admins) and the projects granted each."""

from __future__ import annotations

from typing import Annotated

import typer

from fabric.api.schemas.tenancy import PoolPublic
from fabric.cli.credentials import connect
from fabric.cli.options import JsonOption, amounts, split_pairs
from fabric.cli.output import pairs, print_fields, print_json, print_table

app = typer.Typer(no_args_is_help=True, help="Resource pools and which projects may use them.")


def _fields(pool: PoolPublic) -> dict[str, object]:
    return {
        "name": pool.name,
        "resources": pairs(pool.resources),
        "selector": pairs(pool.node_selector),
        "description": pool.description,
    }


@app.command()
def create(
    name: str,
    resource: Annotated[
        list[str] | None, typer.Option(help="Per node, NAME=AMOUNT, e.g. gpu=8; repeatable.")
    ] = None,
    selector: Annotated[
        list[str] | None, typer.Option(help="Node label KEY=VALUE; repeatable.")
    ] = None,
    description: Annotated[str, typer.Option(help="What the pool is.")] = "",
) -> None:
    """Create a pool (admins only)."""
    resources = amounts(resource, "--resource")
    node_selector = split_pairs(selector, "--selector")
    with connect() as client:
        pool = client.create_pool(
            name, resources=resources, node_selector=node_selector, description=description
        )
    typer.echo(f"created pool {pool.name!r}")


@app.command("list")
def list_(
    project: Annotated[
        str | None, typer.Option(help="Only the pools this project may use.")
    ] = None,
    json_: JsonOption = False,
) -> None:
    """List pools."""
    with connect() as client:
        pools = client.project_pools(project) if project else client.list_pools()
    if json_:
        print_json(pools)
        return
    print_table(
        ["NAME", "RESOURCES", "SELECTOR", "DESCRIPTION"],
        (_fields(pool).values() for pool in pools),
        empty=f"project {project!r} has no pools" if project else "no pools",
        wrap=("RESOURCES", "SELECTOR", "DESCRIPTION"),
    )


@app.command()
def show(name: str, json_: JsonOption = False) -> None:
    """Show one pool."""
    with connect() as client:
        pool = client.get_pool(name)
    if json_:
        print_json(pool)
    else:
        print_fields(_fields(pool))


@app.command()
def delete(name: str) -> None:
    """Delete a pool (admins only)."""
    with connect() as client:
        client.delete_pool(name)
    typer.echo(f"deleted pool {name!r}")


@app.command()
def grant(pool: str, project: str) -> None:
    """Let a project use a pool (admins only)."""
    with connect() as client:
        client.grant_pool(project, pool)
    typer.echo(f"project {project!r} may now use pool {pool!r}")


@app.command()
def revoke(pool: str, project: str) -> None:
    """Stop a project from using a pool (admins only)."""
    with connect() as client:
        client.revoke_pool(project, pool)
    typer.echo(f"project {project!r} may no longer use pool {pool!r}")
