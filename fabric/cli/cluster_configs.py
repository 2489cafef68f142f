"""`fabric cluster-config`: check a cluster config, and see the Kubernetes objects it makes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
import yaml

from fabric.cli.errors import CliError
from kuberay import config, crds, resources
from kuberay.site import Site

app = typer.Typer(no_args_is_help=True, help="Cluster configs: the compute KubeRay brings up.")

FileArgument = Annotated[Path, typer.Argument(help="A cluster config YAML file.")]
ProjectOption = Annotated[str, typer.Option(help="The project to render the objects for.")]
UserOption = Annotated[
    list[str] | None, typer.Option("--user", help="A member whose folder is mounted; repeat.")
]


def _load(path: Path) -> config.ClusterConfig:
    """The config, or every error (path in the file: message) on stderr and exit 1."""
    try:
        return config.load(path)
    except config.ConfigError as exc:
        for where, message in exc.errors:
            typer.echo(f"{path}: {where}: {message}", err=True)
        raise typer.Exit(1) from None


@app.command()
def validate(file: FileArgument, project: ProjectOption = "example") -> None:
    """Check FILE, then the RayCluster it makes against KubeRay's CRD; exit 1 on any error."""
    cluster = _load(file)
    manifest = resources.ray_cluster(project, cluster, Site(), ["user"])
    problems = crds.errors(manifest)
    if problems:
        for problem in problems:
            typer.echo(f"{file}: RayCluster {problem}", err=True)
        raise typer.Exit(1)
    groups = ", ".join(
        f"{group.name} on {group.pool} ({group.min_replicas}-{group.max_replicas})"
        for group in cluster.worker_groups
    )
    typer.echo(f"{file}: ok: {cluster.name}, worker groups: {groups}")


@app.command()
def render(file: FileArgument, project: ProjectOption, user: UserOption = None) -> None:
    """Print the objects a project's cluster is made of, as YAML for `kubectl diff -f -`."""
    if not project:
        raise CliError("--project must name a project")
    cluster = _load(file)
    users = user or []
    objects = [
        *resources.foundation(project, cluster, Site(), users),
        resources.ray_cluster(project, cluster, Site(), users),
    ]
    typer.echo(yaml.safe_dump_all(objects, sort_keys=False))
