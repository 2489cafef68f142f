"""`fabric model`: the project's model registry: versions, their lineage, and aliases."""

from __future__ import annotations

from typing import Annotated

import typer

from fabric.api.schemas.registry import ModelVersionPublic, RegisteredModelPublic
from fabric.cli.credentials import connect
from fabric.cli.options import JsonOption, split_pairs
from fabric.cli.output import print_fields, print_json, print_table, when

app = typer.Typer(no_args_is_help=True, help="The model registry: versions and aliases.")


@app.command("list")
def list_(project: str, json_: JsonOption = False) -> None:
    """The project's models, each with its newest version and aliases."""
    with connect() as client:
        found = client.list_models(project)
    if json_:
        print_json(found)
        return
    print_table(
        ["NAME", "LATEST", "FRAMEWORK", "ALIASES", "VERSIONS", "CREATED"],
        (
            [
                m.name,
                m.latest_version,
                m.versions[-1].framework if m.versions else None,
                m.aliases,
                len(m.versions),
                when(m.created_at),
            ]
            for m in found
        ),
        empty="no models",
    )


@app.command()
def show(
    project: str,
    name: str,
    version: Annotated[
        str | None, typer.Argument(help="A version number or alias; default every version.")
    ] = None,
    json_: JsonOption = False,
) -> None:
    """A model's versions, or one version with its metrics, signature and lineage."""
    with connect() as client:
        if version:
            _show_version(client.get_model_version(project, name, version), json_)
        else:
            _show_versions(client.get_model(project, name), json_)


def _show_version(found: ModelVersionPublic, json_: bool) -> None:
    if json_:
        print_json(found)
        return
    print_fields(
        {
            "model": f"{found.model}@{found.version}",
            "framework": found.framework,
            **({"base": found.base} if found.base else {}),
            "aliases": found.aliases,
            "uri": found.uri,
            "sha256": found.sha256,
            "metrics": found.metrics,
            "inputs": [i["name"] for i in (found.signature.get("inputs") or [])],
            "job": found.lineage["job"],
            "pipeline run": found.lineage["pipeline_run"],
            "dataset": found.lineage["dataset"],
            "tags": found.tags,
            "by": found.user,
            "created": when(found.created_at),
        }
    )


def _show_versions(model: RegisteredModelPublic, json_: bool) -> None:
    if json_:
        print_json(model)
        return
    print_table(
        ["VERSION", "FRAMEWORK", "ALIASES", "METRICS", "JOB", "CREATED"],
        (
            [
                v.version,
                v.framework,
                v.aliases,
                v.metrics,
                v.lineage["job"],
                when(v.created_at),
            ]
            for v in model.versions
        ),
        empty=f"model {model.name} has no versions",
    )


@app.command()
def register(
    project: str,
    name: str,
    source: Annotated[
        str,
        typer.Argument(
            help="A job id, a run folder, or a model file or folder in the project's storage "
            "or yours (relative paths are the project's)."
        ),
    ],
    framework: Annotated[
        str | None, typer.Option(help="How it was saved; default what its run recorded.")
    ] = None,
    entry: Annotated[str | None, typer.Option(help="A custom model's module:Class.")] = None,
    base: Annotated[
        str | None,
        typer.Option(help="A lora adapter's base: the llm version it adapts, MODEL@VERSION."),
    ] = None,
    description: Annotated[str, typer.Option(help="What this version is.")] = "",
    tag: Annotated[list[str] | None, typer.Option(help="KEY=VALUE, repeatable.")] = None,
    json_: JsonOption = False,
) -> None:
    """Register a model as the next version of NAME."""
    tags = split_pairs(tag, "--tag")
    with connect() as client:
        version = client.register_model(
            project,
            name,
            source,
            framework=framework,
            entry=entry,
            base=base,
            description=description,
            tags=tags,
        )
    if json_:
        print_json(version)
    else:
        adapts = f", adapting {version.base}" if version.base else ""
        typer.echo(
            f"model {name} version {version.version} ({version.framework}{adapts}) registered"
        )


@app.command()
def alias(
    project: str,
    name: str,
    alias: str,
    version: Annotated[int, typer.Argument(help="The version the alias names.")],
) -> None:
    """Point an alias (staging, production, ...) at a version."""
    with connect() as client:
        client.set_model_alias(project, name, alias, version)
    typer.echo(f"{name}@{alias} is version {version}")


@app.command()
def unalias(project: str, name: str, alias: str) -> None:
    """Remove an alias."""
    with connect() as client:
        client.delete_model_alias(project, name, alias)
    typer.echo(f"alias {alias} of {name} removed")
