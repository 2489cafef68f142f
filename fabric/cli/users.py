"""`fabric user`: admins create and manage users; everyone changes their own password."""

from __future__ import annotations

from typing import Annotated

import typer

from fabric.api.schemas.tenancy import UserPublic
from fabric.cli import passwords
from fabric.cli.credentials import connect
from fabric.cli.errors import CliError
from fabric.cli.options import JsonOption, PasswordStdinOption
from fabric.cli.output import print_fields, print_json, print_table, when

app = typer.Typer(no_args_is_help=True, help="Users and passwords.")


def _fields(user: UserPublic) -> dict[str, object]:
    return {
        "username": user.username,
        "email": user.email,
        "admin": user.is_admin,
        "disabled": user.disabled,
        "created": when(user.created_at),
    }


@app.command()
def create(
    username: str,
    email: Annotated[str | None, typer.Option(help="Contact address.")] = None,
    admin: Annotated[bool, typer.Option("--admin", help="Make a platform admin.")] = False,
    password_stdin: PasswordStdinOption = False,
) -> None:
    """Create a user (admins only); the password is prompted for twice unless on stdin."""
    password = passwords.read("Password", use_stdin=password_stdin, confirm=True)
    with connect() as client:
        user = client.create_user(username, password, email=email, is_admin=admin)
    typer.echo(f"created user {user.username!r}" + (" (admin)" if user.is_admin else ""))


@app.command("list")
def list_(json_: JsonOption = False) -> None:
    """List every user (admins only)."""
    with connect() as client:
        users = client.list_users()
    if json_:
        print_json(users)
        return
    print_table(
        ["USERNAME", "EMAIL", "ADMIN", "DISABLED", "CREATED"],
        (_fields(user).values() for user in users),
        empty="no users",
        wrap=("EMAIL",),
    )


@app.command()
def show(username: str, json_: JsonOption = False) -> None:
    """Show one user (admins may see anyone; others themselves)."""
    with connect() as client:
        user = client.get_user(username)
    if json_:
        print_json(user)
    else:
        print_fields(_fields(user))


@app.command()
def update(
    username: str,
    admin: Annotated[
        bool | None, typer.Option("--admin/--no-admin", help="Grant or take platform admin.")
    ] = None,
    disable: Annotated[
        bool | None,
        typer.Option("--disable/--enable", help="Disabling also revokes all their tokens."),
    ] = None,
    email: Annotated[str | None, typer.Option(help="New contact address.")] = None,
) -> None:
    """Change a user's admin flag, state or email (admins only)."""
    if admin is None and disable is None and email is None:
        raise CliError("nothing to change: give --admin/--no-admin, --disable/--enable or --email")
    with connect() as client:
        user = client.update_user(username, email=email, is_admin=admin, disabled=disable)
    typer.echo(f"updated user {user.username!r}")


@app.command()
def passwd() -> None:
    """Change your own password."""
    with connect() as client:
        current = typer.prompt("Current password", hide_input=True)
        new = typer.prompt("New password", hide_input=True, confirmation_prompt=True)
        client.change_password(current, new)
    typer.echo("password changed")


@app.command("reset-password")
def reset_password(username: str, password_stdin: PasswordStdinOption = False) -> None:
    """Set a new password for a user (admins only); it ends all their sessions and tokens."""
    password = passwords.read("New password", use_stdin=password_stdin, confirm=True)
    with connect() as client:
        client.update_user(username, password=password)
    typer.echo(f"password of {username!r} reset; their sessions and API tokens were revoked")
