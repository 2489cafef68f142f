"""Uploading a working directory as a project's code package, with a progress bar."""

from __future__ import annotations

import tempfile
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

from fabric.sdk import Client
from fabric.sdk.packages import package


def upload_working_dir(client: Client, project: str, directory: Path, excludes: list[str]) -> str:
    """Upload the directory as a package of the project, unless it is there already."""
    with tempfile.TemporaryDirectory() as folder:
        zipped = package(directory, Path(folder), excludes)
        uri = f"gcs://{zipped.name}"
        if client.has_package(project, zipped.name):
            typer.echo(f"{directory}: unchanged since its last upload", err=True)
            return uri
        columns = (
            TextColumn("uploading {task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
        )
        with Progress(*columns, console=Console(stderr=True)) as bar:
            task = bar.add_task(directory.resolve().name, total=zipped.stat().st_size)
            return client.upload_package(
                project, zipped, progress=lambda sent: bar.advance(task, sent)
            )
