"""`fabric pipeline`: DAGs of template tasks from YAML, their runs, schedules and backfills."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from fabric.api.schemas.pipelines import PipelinePublic, PipelineRunPublic, TaskRunPublic
from fabric.cli.credentials import connect
from fabric.cli.errors import CliError
from fabric.cli.options import JsonOption, moment, read_mapping, split_pairs
from fabric.cli.output import cell, print_fields, print_json, print_table, when
from fabric.sdk import Client
from fabric.states import JOB_WAITING, RUN_ENDED, PipelineRunStatus, TaskRunStatus

app = typer.Typer(no_args_is_help=True, help="Pipelines: DAGs of template tasks, on schedules.")

POLL_SECONDS = 0.5
RunArgument = Annotated[int, typer.Argument(metavar="RUN", help="The run's id.")]
STYLES = {
    TaskRunStatus.SUCCEEDED: "green",
    TaskRunStatus.FAILED: "red",
    TaskRunStatus.UPSTREAM_FAILED: "red",
    TaskRunStatus.RUNNING: "cyan",
}


def _read_spec(path: Path) -> dict[str, Any]:
    what = "a pipeline is a mapping with a name and tasks"
    spec = read_mapping(path, what)
    if not isinstance(spec.get("name"), str):
        raise CliError(f"{path}: {what}")
    return spec


@app.command()
def apply(
    project: str,
    file: Annotated[Path, typer.Option("--file", "-f", help="The pipeline's YAML.")],
    json_: JsonOption = False,
) -> None:
    """Create a pipeline from YAML, or replace its spec with a new version."""
    spec = _read_spec(file)
    with connect() as client:
        pipeline = client.apply_pipeline(project, spec)
    if json_:
        print_json(pipeline)
    else:
        typer.echo(f"pipeline {pipeline.name} version {pipeline.version} applied")


@app.command("list")
def list_(project: str, json_: JsonOption = False) -> None:
    """The project's pipelines."""
    with connect() as client:
        found = client.list_pipelines(project)
    if json_:
        print_json(found)
        return
    print_table(
        ["NAME", "VERSION", "TASKS", "SCHEDULE", "NEXT", "UPDATED", "DESCRIPTION"],
        (
            [
                p.name,
                p.version,
                len(p.spec["tasks"]),
                _schedule(p),
                when(p.next_tick),
                when(p.updated_at),
                p.description,
            ]
            for p in found
        ),
        empty="no pipelines",
        wrap=("DESCRIPTION",),
    )


def _schedule(pipeline: PipelinePublic) -> str | None:
    schedule = pipeline.spec.get("schedule")
    if schedule is None:
        return None
    return f"{schedule['cron']}{' (paused)' if pipeline.paused else ''}"


@app.command()
def show(project: str, name: str, json_: JsonOption = False) -> None:
    """A pipeline's settings and tasks."""
    with connect() as client:
        pipeline = client.get_pipeline(project, name)
    if json_:
        print_json(pipeline)
        return
    spec = pipeline.spec
    print_fields(
        {
            "name": pipeline.name,
            "version": pipeline.version,
            "applied by": pipeline.user,
            "schedule": _schedule(pipeline),
            "next run": when(pipeline.next_tick),
            "globals": spec.get("globals"),
        }
    )
    print_table(
        ["TASK", "TEMPLATE", "AFTER", "RETRIES", "TIMEOUT"],
        (
            [
                task,
                body["template"],
                ", ".join(body.get("after", [])),
                body.get("retries", 0),
                body.get("timeout_seconds"),
            ]
            for task, body in spec["tasks"].items()
        ),
        empty="no tasks",
    )


@app.command()
def export(project: str, name: str) -> None:
    """Print the pipeline's spec as YAML (for `apply -f` here or elsewhere)."""
    with connect() as client:
        typer.echo(client.export_pipeline(project, name), nl=False)


@app.command()
def delete(project: str, name: str) -> None:
    """Delete a pipeline and its runs' records (its jobs stay, for usage and audit)."""
    with connect() as client:
        client.delete_pipeline(project, name)
    typer.echo(f"pipeline {name} deleted")


@app.command()
def copy(project: str, name: str, new_name: str) -> None:
    """Copy a pipeline under a new name."""
    with connect() as client:
        client.copy_pipeline(project, name, new_name)
    typer.echo(f"pipeline {name} copied to {new_name}")


@app.command()
def pause(project: str, name: str) -> None:
    """Pause the pipeline's schedule; runs under way go on."""
    with connect() as client:
        client.pause_pipeline(project, name)
    typer.echo(f"pipeline {name}: schedule paused")


@app.command()
def resume(project: str, name: str) -> None:
    """Resume the pipeline's schedule."""
    with connect() as client:
        pipeline = client.pause_pipeline(project, name, paused=False)
    typer.echo(f"pipeline {name}: schedule resumed, next run {when(pipeline.next_tick)}")


@app.command()
def run(
    project: str,
    name: str,
    globals_: Annotated[
        list[str] | None,
        typer.Option("--global", "-g", help="NAME=VALUE (YAML), for this run only."),
    ] = None,
    logical_date: Annotated[
        str | None, typer.Option(help="What {{ ds }} says, e.g. 2026-01-31; default: now.")
    ] = None,
    only: Annotated[
        str | None,
        typer.Option(help="Run this task alone (debugging), with its upstream's last outputs."),
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Show each task's progress until the end.")
    ] = False,
    json_: JsonOption = False,
) -> None:
    """Run a pipeline now. With --follow it exits 0 only if the run succeeds."""
    variables = {
        key: yaml.safe_load(value) for key, value in split_pairs(globals_, "--global").items()
    }
    with connect() as client:
        started = client.run_pipeline(
            project,
            name,
            logical_date=moment(logical_date, "--logical-date"),
            globals=variables,
            only=only,
        )
        if not follow:
            if json_:
                print_json(started)
            else:
                typer.echo(f"run {started.id} queued")
            return
        ended = _follow(client, project, name, started.id)
    if json_:
        print_json(ended)
    if ended.status != PipelineRunStatus.SUCCEEDED:
        raise typer.Exit(1)


def _follow(client: Client, project: str, name: str, run_id: int) -> PipelineRunPublic:
    """Redraw the run's tasks in place until it ends (printed once at the end when piped)."""
    console = Console(highlight=False, stderr=True)
    current = client.get_pipeline_run(project, name, run_id)
    with Live(_view(current), console=console, auto_refresh=False, transient=False) as live:
        while current.status not in RUN_ENDED:
            time.sleep(POLL_SECONDS)
            current = client.get_pipeline_run(project, name, run_id)
            live.update(_view(current), refresh=True)
    if not console.is_terminal:
        # Piped: the view is printed once, without the line end a terminal's cursor adds.
        console.line()
    return current


def _view(run_: PipelineRunPublic) -> Group:
    table = Table(box=None, pad_edge=False)
    for column in ("TASK", "STATUS", "JOB", "STARTED", "SECONDS", "MESSAGE"):
        table.add_column(column, no_wrap=column != "MESSAGE")
    for task in run_.tasks:
        status = str(task.status)
        if status == TaskRunStatus.RUNNING and task.job_status in JOB_WAITING:
            status = f"RUNNING ({task.job_status})"
        table.add_row(
            task.task,
            Text(status, style=STYLES.get(task.status, "")),
            cell(task.job_id),
            when(task.started_at, seconds=True),
            cell(_seconds(task)),
            Text(task.message),
        )
    title = Text(
        f"{run_.pipeline} run {run_.number} (id {run_.id}): {run_.status} {run_.message}".rstrip()
    )
    return Group(title, table)


def _seconds(task: TaskRunPublic) -> float | None:
    if task.started_at is None:
        return None
    end = task.ended_at or datetime.now(UTC)
    return round((end - task.started_at).total_seconds(), 1)


@app.command()
def runs(project: str, name: str, json_: JsonOption = False) -> None:
    """The pipeline's runs, newest first."""
    with connect() as client:
        found = client.list_pipeline_runs(project, name)
    if json_:
        print_json(found)
        return
    print_table(
        ["ID", "RUN", "TRIGGER", "LOGICAL DATE", "STATUS", "STARTED", "ENDED", "MESSAGE"],
        (
            [
                r.id,
                r.number,
                r.trigger,
                when(r.logical_date),
                r.status,
                when(r.started_at),
                when(r.ended_at),
                r.message,
            ]
            for r in found
        ),
        empty="no runs",
        wrap=("MESSAGE",),
    )


@app.command()
def status(
    project: str,
    name: str,
    run_id: RunArgument,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Until the run ends.")] = False,
    json_: JsonOption = False,
) -> None:
    """One run: each task's status, job, timings and message, then what the tasks output:
    metrics, tables, images and charts."""
    with connect() as client:
        if follow:
            found = _follow(client, project, name, run_id)
        else:
            found = client.get_pipeline_run(project, name, run_id)
    if json_:
        print_json(found)
        return
    if not follow:
        Console(highlight=False).print(_view(found))
    _print_results(found)


def _print_results(run_: PipelineRunPublic) -> None:
    metrics, files = [], []
    for task in run_.tasks:
        results = task.results or {}
        for metric, value in results.get("metrics", {}).items():
            metrics.append(
                [task.task, metric, round(value, 4) if isinstance(value, float) else value]
            )
        for kind, found in (
            ("table", results.get("tables", {})),
            ("chart", results.get("charts", {})),
        ):
            for item in found:
                files.append(
                    [
                        task.task,
                        kind,
                        item,
                        found[item].get("url", "") if kind == "table" else "",
                    ]
                )
        for image in results.get("images", []):
            files.append([task.task, "image", image["name"], image["url"]])
    typer.echo()
    print_table(["TASK", "METRIC", "VALUE"], metrics, empty="no metrics")
    if files:
        typer.echo()
        print_table(["TASK", "KIND", "NAME", "URL"], files, empty="")


@app.command()
def cancel(project: str, name: str, run_id: RunArgument) -> None:
    """Cancel a run: its running jobs stop and its tasks end CANCELLED."""
    with connect() as client:
        found = client.cancel_pipeline_run(project, name, run_id)
    typer.echo(f"run {run_id}: {found.status}")


@app.command()
def rerun(project: str, name: str, run_id: RunArgument) -> None:
    """Run an ended run again from the tasks that did not succeed."""
    with connect() as client:
        client.rerun_pipeline_run(project, name, run_id)
    typer.echo(f"run {run_id} queued again from its unfinished tasks")


@app.command()
def backfill(
    project: str,
    name: str,
    start: Annotated[str, typer.Option(help="First schedule tick, e.g. 2026-01-01.")],
    end: Annotated[str, typer.Option(help="Last schedule tick, included.")],
) -> None:
    """A run for each schedule tick from --start to --end that has none yet."""
    with connect() as client:
        made = client.backfill_pipeline(
            project, name, _required(moment(start, "--start")), _required(moment(end, "--end"))
        )
    typer.echo(f"{len(made)} runs queued")


def _required(value: datetime | None) -> datetime:
    if value is None:
        raise CliError("give a date, e.g. 2026-01-01")
    return value
