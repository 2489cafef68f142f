"""`fabric job`: commands run on Ray once quota admits them, their output, and stopping them."""

from __future__ import annotations

import shlex
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from fabric.api.schemas.jobs import JobPublic
from fabric.cli.credentials import connect
from fabric.cli.errors import CliError
from fabric.cli.options import JsonOption, amounts, split_pairs
from fabric.cli.output import describe_workers, pairs, print_fields, print_json, print_table, when
from fabric.cli.uploads import upload_working_dir
from fabric.sdk import Client
from fabric.states import JOB_WAITING, JobStatus

app = typer.Typer(no_args_is_help=True, help="Jobs: commands run on Ray within quota.")

POLL_SECONDS = 0.5


IdArgument = Annotated[int, typer.Argument(metavar="ID")]
COLUMNS = ["ID", "NAME", "USER", "STATUS", "QUEUE", "RESOURCES", "CREATED", "ENDED", "MESSAGE"]


def _gist(message: str) -> str:
    """A message's first line: Ray appends the end of the job's output to its reasons."""
    return message.strip().split("\n", 1)[0].rstrip(":")


def _row(job: JobPublic) -> list[object]:
    return [
        job.id,
        job.name,
        job.user,
        job.status,
        job.queue_position,
        pairs(job.requested),
        when(job.created_at),
        when(job.ended_at),
        _gist(job.message),
    ]


def _fields(job: JobPublic) -> dict[str, object]:
    return {
        "id": job.id,
        "name": job.name,
        "user": job.user,
        "status": job.status,
        "queue": job.queue_position,
        "message": job.message,
        "entrypoint": job.entrypoint,
        "template": job.template,
        "params": pairs(job.params) if job.params else None,
        "resources": pairs(job.resources),
        "workers": describe_workers(job.workers, job.worker_resources),
        "requested": pairs(job.requested),
        "pool": job.pool,
        "timeout": f"{job.timeout_seconds:g} s" if job.timeout_seconds else None,
        "attempt": f"{job.attempt} of {job.max_retries + 1}",
        "submission": job.submission_id,
        "created": when(job.created_at, seconds=True),
        "started": when(job.started_at, seconds=True),
        "ended": when(job.ended_at, seconds=True),
    }


def _runtime_env(env: list[str] | None, pip: list[str] | None) -> dict[str, Any]:
    runtime_env: dict[str, Any] = {}
    if env:
        runtime_env["env_vars"] = split_pairs(env, "--env")
    if pip:
        runtime_env["pip"] = pip
    return runtime_env


def _label(job: JobPublic) -> str:
    position = f" (position {job.queue_position})" if job.queue_position else ""
    return f"job {job.id}: {job.status}{position}"


def _submitted(job: JobPublic) -> str:
    queue = f"; position {job.queue_position} in the queue" if job.queue_position else ""
    return f"job {job.id} submitted ({job.status}){queue}"


def _outcome(job: JobPublic) -> str:
    gist = _gist(job.message) if job.status != JobStatus.SUCCEEDED else ""
    reason = f": {gist}" if gist else ""
    return f"job {job.id} {job.status}{reason}"


def _poll(
    client: Client, project: str, job: JobPublic, waiting: tuple[JobStatus, ...]
) -> JobPublic:
    """The job once it left the `waiting` states, its state kept live on stderr meanwhile."""
    with Console(stderr=True).status(_label(job)) as line:
        while job.status in waiting:
            time.sleep(POLL_SECONDS)
            job = client.get_job(project, job.id)
            line.update(_label(job))
    return job


def _run_to_end(client: Client, project: str, job: JobPublic, *, show_logs: bool) -> JobPublic:
    """Wait for the job to end, printing its output from when it starts to run.

    The server's log stream follows every attempt and ends once the job's record is final,
    so the status read after it is the end.
    """
    job = _poll(client, project, job, JOB_WAITING)
    if not show_logs:
        return _poll(client, project, job, (*JOB_WAITING, JobStatus.RUNNING))
    for chunk in client.follow_job_logs(project, job.id):
        typer.echo(chunk, nl=False)
    return client.get_job(project, job.id)


@app.command()
def submit(
    project: str,
    command: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="-- COMMAND",
            help="The command and its arguments (or give --template).",
            show_default=False,
        ),
    ] = None,
    template: Annotated[
        str | None,
        typer.Option(help="Run this template instead of a command (`fabric template list`)."),
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option(help="A template parameter NAME=VALUE; repeatable (lists as JSON)."),
    ] = None,
    name: Annotated[str | None, typer.Option(help="A name; job-XXXXXXXX if not given.")] = None,
    resource: Annotated[
        list[str] | None,
        typer.Option(
            help="The driver's NAME=AMOUNT, e.g. cpu=2 or gpu=1; repeatable; default: the "
            "template's, or cpu=1."
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(help="Ray workers beside the driver (Train, Tune); default: the template's."),
    ] = None,
    worker_resource: Annotated[
        list[str] | None,
        typer.Option(help="What each worker holds, NAME=AMOUNT; repeatable."),
    ] = None,
    pool: Annotated[str | None, typer.Option(help="A pool granted to the project.")] = None,
    env: Annotated[
        list[str] | None, typer.Option(help="An environment variable KEY=VALUE; repeatable.")
    ] = None,
    pip: Annotated[
        list[str] | None, typer.Option(help="A pip package to install for it; repeatable.")
    ] = None,
    timeout: Annotated[
        float | None, typer.Option(help="Stop it after this many seconds of running.")
    ] = None,
    retries: Annotated[int, typer.Option(help="Run it again this many times if it fails.")] = 0,
    working_dir: Annotated[
        Path | None,
        typer.Option(
            help="Upload this directory; the job runs in it (what .gitignore lists stays out).",
            exists=True,
            file_okay=False,
        ),
    ] = None,
    exclude: Annotated[
        list[str] | None,
        typer.Option(help="A .gitignore-style pattern to leave out of --working-dir."),
    ] = None,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="Return once submitted; do not follow it.")
    ] = False,
    json_: Annotated[
        bool,
        typer.Option(
            "--json", help="Print the job's JSON instead of its output: when it ends, or at once."
        ),
    ] = False,
) -> None:
    """Run a command on Ray and follow it to its end, e.g. `... P -- python train.py`, or a
    template, e.g. `... P --template data-import --param source=x.csv --param name=x`.

    It exits 0 only if the job succeeds; Ctrl-C stops following, never the job.
    """
    if bool(command) == bool(template):
        raise CliError("give either -- COMMAND or --template NAME")
    if param and not template:
        raise CliError("--param goes with --template")
    resources = amounts(resource, "--resource") or None
    runtime_env = _runtime_env(env, pip)
    with connect() as client:
        if working_dir is not None:
            runtime_env["working_dir"] = upload_working_dir(
                client, project, working_dir, exclude or []
            )
        job = client.submit_job(
            project,
            shlex.join(command) if command else None,
            template=template,
            params=split_pairs(param, "--param") if template else None,
            name=name,
            runtime_env=runtime_env,
            resources=resources,
            workers=workers,
            worker_resources=amounts(worker_resource, "--worker-resource") or None,
            pool=pool,
            timeout_seconds=timeout,
            max_retries=retries,
        )
        if not json_:
            typer.echo(_submitted(job))
        if not no_wait:
            try:
                job = _run_to_end(client, project, job, show_logs=not json_)
            except KeyboardInterrupt:
                typer.echo(
                    "stopped following; the job goes on "
                    f"(fabric job stop {project} {job.id} to stop it)",
                    err=True,
                )
                raise typer.Exit(130) from None
    if json_:
        print_json(job)
    elif not no_wait:
        typer.echo(_outcome(job))
    if not no_wait and job.status != JobStatus.SUCCEEDED:
        raise typer.Exit(1)


@app.command("list")
def list_(
    project: str,
    status: Annotated[
        JobStatus | None, typer.Option(case_sensitive=False, help="Only jobs in this state.")
    ] = None,
    user: Annotated[str | None, typer.Option(help="Only this user's jobs.")] = None,
    json_: JsonOption = False,
) -> None:
    """List a project's jobs, newest first."""
    with connect() as client:
        jobs = client.list_jobs(project, status=status.value if status else None, user=user)
    if json_:
        print_json(jobs)
        return
    print_table(
        COLUMNS, (_row(job) for job in jobs), empty="no jobs", wrap=("RESOURCES", "MESSAGE")
    )


@app.command()
def show(project: str, job_id: IdArgument, json_: JsonOption = False) -> None:
    """Show one job: how it was asked for, and how it went."""
    with connect() as client:
        job = client.get_job(project, job_id)
    if json_:
        print_json(job)
    else:
        print_fields(_fields(job))


@app.command()
def outputs(project: str, job_id: IdArgument, json_: JsonOption = False) -> None:
    """Show what a job produced: its outputs (model_uri, metrics, ...) and its last metrics."""
    with connect() as client:
        found = client.job_outputs(project, job_id)
    if json_:
        print_json(found)
        return
    if not found.outputs and not found.metrics:
        typer.echo(f"job {job_id} has written no outputs yet")
        return
    print_fields(found.outputs)
    if found.metrics:
        last = {k: v for k, v in found.metrics[-1].items() if k != "time"}
        typer.echo(f"\nlast of {len(found.metrics)} metric reports: {pairs(last)}")


@app.command()
def logs(
    project: str,
    job_id: IdArgument,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing output until the job ends.")
    ] = False,
) -> None:
    """Print the output of a job's latest attempt."""
    with connect() as client:
        if follow:
            for chunk in client.follow_job_logs(project, job_id):
                typer.echo(chunk, nl=False)
        else:
            typer.echo(client.job_logs(project, job_id), nl=False)


@app.command()
def stop(project: str, job_id: IdArgument) -> None:
    """Stop a job (its user or a project owner); one that has ended stays as it was."""
    with connect() as client:
        job = client.stop_job(project, job_id)
    typer.echo(_outcome(job))
