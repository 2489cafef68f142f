"""`fabric up`, `fabric down`, `fabric status`: the embedded default on this machine."""

from __future__ import annotations

from dataclasses import asdict

import typer
from rich.console import Console

from fabric.backends.base import BackendUnavailable
from fabric.cli.errors import CliError
from fabric.cli.options import JsonOption
from fabric.cli.output import print_fields, print_json
from fabric.cli.settings import load_settings
from fabric.daemon import DaemonFailed
from fabric.embedded import Embedded


def up() -> None:
    """Start the local Ray head and the Fabric server in the background (if not running)."""
    settings = load_settings()
    embedded = Embedded(settings)
    with Console(stderr=True).status("starting the Ray head and the Fabric server…"):
        try:
            started = embedded.up()
        except (BackendUnavailable, DaemonFailed) as exc:
            raise CliError(str(exc)) from None
    if not (started.ray_head or started.server):
        typer.echo(f"Fabric is already up at {embedded.url}; nothing to do")
        return
    what = [
        name for name, yes in (("Ray head", started.ray_head), ("server", started.server)) if yes
    ]
    typer.echo(f"started the {' and the '.join(what)}: Fabric is up at {embedded.url}")
    typer.echo(f"logs: {settings.log_dir}")
    if settings.initial_password_file.exists():
        typer.echo(
            f"the first admin's one-time password is in {settings.initial_password_file}; "
            "log in with `fabric login` and change it with `fabric user passwd`"
        )


def down() -> None:
    """Stop the Fabric server and the local Ray head."""
    stopped = Embedded(load_settings()).down()
    for name, was in (("server", stopped.server), ("Ray head", stopped.ray_head)):
        typer.echo(f"stopped the {name}" if was else f"the {name} was not running")


def _amount(name: str, amount: float) -> str:
    """`memory 14.8 GiB`, `cpu 8`: memory in GiB to a tenth, anything else as a count."""
    if name == "memory":
        return f"memory {amount:.1f} GiB"
    return f"{name} {round(amount, 2):g}"


def status(as_json: JsonOption = False) -> None:
    """What runs: the server and the Ray head, with versions, resources and addresses."""
    state = Embedded(load_settings()).status()
    if as_json:
        print_json(asdict(state))
    else:
        resources = ", ".join(
            _amount(name, amount) for name, amount in sorted(state.ray_resources.items())
        )
        print_fields(
            {
                "server": f"{'ready' if state.server_ready else 'not ready'} at {state.server_url}"
                + (f" (pid {state.server_pid})" if state.server_pid else ""),
                "ray head": (f"Ray {state.ray_version}" if state.ray_version else "down")
                + (f" (pid {state.ray_pid})" if state.ray_pid else ""),
                "ray dashboard": f"{state.ray_dashboard} (token-protected; loopback only)",
                "resources": resources or "-",
                "problem": state.problem or "-",
            }
        )
    if state.problem:
        raise typer.Exit(1)
