"""`fabric template`: the job templates, and each one's parameters."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from fabric.api.schemas.templates import TemplatePublic
from fabric.cli.credentials import connect
from fabric.cli.errors import CliError
from fabric.cli.options import JsonOption
from fabric.cli.output import describe_workers, pairs, print_fields, print_json, print_table
from fabric.cli.uploads import upload_working_dir

app = typer.Typer(no_args_is_help=True, help="Job templates: ready jobs to run with parameters.")


def _kind(schema: dict[str, Any]) -> str:
    """A parameter's type in a word or two, e.g. `integer`, `string | null`, `csv|parquet`."""
    if "enum" in schema:
        return "|".join(str(value) for value in schema["enum"])
    options = schema.get("anyOf")
    if options:
        return " | ".join(_kind(option) for option in options)
    kind = schema.get("type", "any")
    if kind == "array" and "items" in schema:
        return f"list of {_kind(schema['items'])}"
    return str(kind)


def _parameter_rows(schema: dict[str, Any]) -> list[list[object]]:
    required = set(schema.get("required", []))
    rows: list[list[object]] = []
    for name, field in schema.get("properties", {}).items():
        default = "(required)" if name in required else field.get("default")
        rows.append([name, _kind(field), default, field.get("description", "")])
    return rows


@app.command("list")
def list_(
    project: Annotated[
        str | None,
        typer.Option(help="Every version of this project's own templates, published or not."),
    ] = None,
    json_: JsonOption = False,
) -> None:
    """List the templates a job can run: built-in ones and those projects published."""
    with connect() as client:
        templates = client.list_project_templates(project) if project else client.list_templates()
    if json_:
        print_json(templates)
        return
    print_table(
        ["NAME", "VERSION", "GROUP", "RESOURCES", "WORKERS", "DESCRIPTION"],
        (
            [
                t.name,
                _version(t),
                t.group,
                pairs(t.resources),
                describe_workers(t.workers, t.worker_resources),
                t.description,
            ]
            for t in templates
        ),
        empty="no templates",
        wrap=("DESCRIPTION",),
    )


def _version(template: TemplatePublic) -> str | None:
    if template.version is None:
        return None
    return f"{template.version}{' (published)' if template.published else ''}"


@app.command()
def register(
    project: str,
    file: Annotated[
        Path,
        typer.Option(
            "--file",
            "-f",
            exists=True,
            dir_okay=False,
            help="YAML or JSON: name, command, parameters (JSON Schema), description, "
            "resources, workers, worker_resources, runtime_env.",
        ),
    ],
    working_dir: Annotated[
        Path | None,
        typer.Option(
            help="Upload this directory as the template's code (what .gitignore lists stays out).",
            exists=True,
            file_okay=False,
        ),
    ] = None,
    publish: Annotated[
        bool, typer.Option("--publish", help="Let every project run it (project owners).")
    ] = False,
    json_: JsonOption = False,
) -> None:
    """Register the next version of one of PROJECT's templates; jobs run it as PROJECT/NAME."""
    try:
        spec = yaml.safe_load(file.read_text())
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else "?"
        raise CliError(f"{file}: not YAML or JSON: {exc.problem} (line {line})") from None
    if not isinstance(spec, dict):
        raise CliError(f"{file}: expected a mapping of name, command, parameters, ...")
    with connect() as client:
        if working_dir is not None:
            runtime_env = dict(spec.get("runtime_env") or {})
            runtime_env["working_dir"] = upload_working_dir(client, project, working_dir, [])
            spec["runtime_env"] = runtime_env
        template = client.register_template(project, {**spec, "published": publish})
    if json_:
        print_json(template)
        return
    typer.echo(f"registered {template.name}@{template.version}")


@app.command()
def publish(
    project: str,
    name: str,
    version: int,
    withdraw: Annotated[
        bool, typer.Option("--withdraw", help="Take it back: only PROJECT may run it again.")
    ] = False,
) -> None:
    """Let every project run version VERSION of PROJECT's template NAME."""
    with connect() as client:
        template = client.publish_template(project, name, version, published=not withdraw)
    state = "published" if template.published else "no longer published"
    typer.echo(f"{template.name}@{template.version} {state}")


@app.command()
def show(name: str, json_: JsonOption = False) -> None:
    """Show a template: its parameters (pass them as `--param NAME=VALUE`) and outputs."""
    with connect() as client:
        template = client.get_template(name)
    if json_:
        print_json(template)
        return
    print_fields(
        {
            "name": template.name,
            "group": template.group,
            "description": template.description,
            "module": template.module,
            "command": template.command,
            "version": _version(template),
            "resources": pairs(template.resources),
            "workers": describe_workers(template.workers, template.worker_resources),
        }
    )
    typer.echo()
    print_table(
        ["PARAMETER", "TYPE", "DEFAULT", "DESCRIPTION"],
        _parameter_rows(template.parameters),
        empty="no parameters",
        wrap=("DESCRIPTION",),
    )
    typer.echo()
    print_table(
        ["OUTPUT", "DESCRIPTION"],
        ([name, what] for name, what in template.outputs.items()),
        empty="no outputs",
        wrap=("DESCRIPTION",),
    )
