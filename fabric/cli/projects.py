"""`fabric project`: projects and their members."""

from __future__ import annotations

from typing import Annotated

import typer

from fabric.cli.credentials import connect
from fabric.cli.errors import CliError
from fabric.cli.options import JsonOption
from fabric.cli.output import print_fields, print_json, print_table, when
from fabric.services.tenancy.roles import Role

app = typer.Typer(no_args_is_help=True, help="Projects and their members.")
members = typer.Typer(no_args_is_help=True, help="Who is in a project, and their role.")
app.add_typer(members, name="member")

DescriptionOption = Annotated[str, typer.Option(help="What the project is for.")]


@app.command()
def create(name: str, description: DescriptionOption = "") -> None:
    """Create a project; you become its owner."""
    with connect() as client:
        project = client.create_project(name, description=description)
    typer.echo(f"created project {project.name!r}")


@app.command("list")
def list_(json_: JsonOption = False) -> None:
    """List your projects (admins: every project)."""
    with connect() as client:
        projects = client.list_projects()
    if json_:
        print_json(projects)
        return
    print_table(
        ["NAME", "ROLE", "DESCRIPTION", "CREATED"],
        ([p.name, p.role, p.description, when(p.created_at)] for p in projects),
        empty="no projects",
        wrap=("DESCRIPTION",),
    )


@app.command()
def show(name: str, json_: JsonOption = False) -> None:
    """Show one project."""
    with connect() as client:
        project = client.get_project(name)
    if json_:
        print_json(project)
        return
    print_fields(
        {
            "name": project.name,
            "description": project.description,
            "your role": project.role,
            "created": when(project.created_at),
        }
    )


@app.command()
def update(name: str, description: DescriptionOption) -> None:
    """Change a project's description (owners)."""
    with connect() as client:
        client.update_project(name, description=description)
    typer.echo(f"updated project {name!r}")


@app.command()
def delete(
    name: str,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a project (owners); it must hold no active allocations."""
    with connect() as client:
        if not yes and not typer.confirm(f"Delete project {name!r}?"):
            raise CliError(f"project {name!r} was not deleted")
        client.delete_project(name)
    typer.echo(f"deleted project {name!r}")


@members.command("list")
def list_members(project: str, json_: JsonOption = False) -> None:
    """List a project's members."""
    with connect() as client:
        rows = client.list_members(project)
    if json_:
        print_json(rows)
        return
    print_table(
        ["USERNAME", "ROLE", "SINCE"],
        ([m.username, m.role, when(m.created_at)] for m in rows),
        empty="no members",
    )


@members.command("add")
def add_member(
    project: str,
    username: str,
    role: Annotated[Role, typer.Option(help="Their role in the project.")] = Role.MEMBER,
) -> None:
    """Add a user to a project, or change their role (owners)."""
    with connect() as client:
        member = client.set_member(project, username, role.value)
    typer.echo(f"{member.username!r} is now {member.role} of {project!r}")


@members.command("remove")
def remove_member(project: str, username: str) -> None:
    """Remove a user from a project (owners)."""
    with connect() as client:
        client.remove_member(project, username)
    typer.echo(f"removed {username!r} from {project!r}")
