"""`fabric template`: the job templates, and each one's parameters."""

from __future__ import annotations

from typing import Any

import typer

from fabric.cli.credentials import connect
from fabric.cli.options import JsonOption
from fabric.cli.output import describe_workers, pairs, print_fields, print_json, print_table

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
def list_(json_: JsonOption = False) -> None:
    """List the templates a job can run."""
    with connect() as client:
        templates = client.list_templates()
    if json_:
        print_json(templates)
        return
    print_table(
        ["NAME", "GROUP", "RESOURCES", "DESCRIPTION"],
        ([t["name"], t["group"], pairs(t["resources"]), t["description"]] for t in templates),
        empty="no templates",
        wrap=("DESCRIPTION",),
    )


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
            "name": template["name"],
            "group": template["group"],
            "description": template["description"],
            "module": template["module"],
            "resources": pairs(template["resources"]),
            "workers": describe_workers(template["workers"], template["worker_resources"]),
        }
    )
    typer.echo()
    print_table(
        ["PARAMETER", "TYPE", "DEFAULT", "DESCRIPTION"],
        _parameter_rows(template["parameters"]),
        empty="no parameters",
        wrap=("DESCRIPTION",),
    )
    typer.echo()
    print_table(
        ["OUTPUT", "DESCRIPTION"],
        ([name, what] for name, what in template["outputs"].items()),
        empty="no outputs",
        wrap=("DESCRIPTION",),
    )
