"""`fabric endpoint`: registered models served online, their traffic, revisions and keys."""

from __future__ import annotations

import json
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from fabric.api.schemas.serving import EndpointPublic
from fabric.cli.credentials import connect
from fabric.cli.errors import CliError
from fabric.cli.options import JsonOption, read_mapping, split_pairs
from fabric.cli.output import print_fields, print_json, print_table, when
from fabric.sdk import Client
from fabric.states import EndpointStatus

app = typer.Typer(no_args_is_help=True, help="Online endpoints on Ray Serve.")
keys = typer.Typer(no_args_is_help=True, help="API keys that call one endpoint.")
app.add_typer(keys, name="key")

POLL_SECONDS = 1.0


class Kind(StrEnum):
    """The spec's `kind` (the server checks it; the CLI offers the choice)."""

    CLASSIC = "classic"
    LLM = "llm"


SETTLED = (EndpointStatus.RUNNING, EndpointStatus.DEPLOY_FAILED, EndpointStatus.UNHEALTHY)
WaitOption = Annotated[
    bool, typer.Option("--wait/--no-wait", help="Wait until Serve runs the new revision.")
]
TimeoutOption = Annotated[float, typer.Option(help="How long to wait, in seconds.")]


def _traffic(value: str) -> dict[str, Any]:
    """MODEL[@VERSION|@ALIAS][:WEIGHT] as a spec entry."""
    reference, _, weight = value.partition(":")
    model, _, which = reference.partition("@")
    if not model:
        raise CliError(f"--model {value!r}: give MODEL, MODEL@VERSION or MODEL@ALIAS")
    entry: dict[str, Any] = {"model": model}
    if which.isdigit():
        entry["version"] = int(which)
    elif which:
        entry["alias"] = which
    if weight:
        try:
            entry["weight"] = float(weight)
        except ValueError:
            raise CliError(f"--model {value!r}: the weight after ':' is a number") from None
    return entry


def _wait(client: Client, project: str, name: str, revision: int, timeout: float) -> EndpointPublic:
    """Follow Serve's state of the endpoint until it settles, showing it as it goes."""
    deadline = time.monotonic() + timeout
    console = Console(stderr=True)
    with console.status(f"deploying {project}/{name} revision {revision}") as status:
        while True:
            endpoint = client.get_endpoint(project, name)
            state = endpoint.status
            status.update(f"{project}/{name} revision {revision}: {state} {endpoint.message}")
            if endpoint.revision != revision or state in SETTLED:
                return endpoint
            if time.monotonic() > deadline:
                raise CliError(
                    f"endpoint {name} is still {state} after {timeout:g} s; "
                    f"see `fabric endpoint show {project} {name}`"
                )
            time.sleep(POLL_SECONDS)


def _report(endpoint: EndpointPublic, json_: bool) -> None:
    if json_:
        print_json(endpoint)
        return
    if endpoint.status == EndpointStatus.DEPLOY_FAILED:
        raise CliError(f"endpoint {endpoint.name} failed to deploy: {endpoint.message}")
    where = (
        f"{endpoint.url}/v1 (OpenAI's API)"
        if endpoint.spec.get("kind") == Kind.LLM
        else f"{endpoint.url}/predict"
    )
    typer.echo(
        f"endpoint {endpoint.name} revision {endpoint.revision}: {endpoint.status} at {where}"
    )


def _changed(
    client: Client, project: str, endpoint: EndpointPublic, wait: bool, timeout: float, json_: bool
) -> None:
    if wait:
        endpoint = _wait(client, project, endpoint.name, endpoint.revision, timeout)
    _report(endpoint, json_)


@app.command()
def deploy(
    project: str,
    name: str,
    model: Annotated[
        list[str] | None,
        typer.Option(
            help="MODEL[@VERSION|@ALIAS][:WEIGHT], repeatable (a canary: a second one with a "
            "weight)."
        ),
    ] = None,
    file: Annotated[
        Path | None, typer.Option("--file", "-f", help="The whole spec as YAML instead.")
    ] = None,
    replicas: Annotated[int | None, typer.Option(help="Replicas of each version.")] = None,
    min_replicas: Annotated[int | None, typer.Option(help="Autoscale from this many.")] = None,
    max_replicas: Annotated[int | None, typer.Option(help="Autoscale up to this many.")] = None,
    kind: Annotated[
        Kind | None,
        typer.Option(help="classic (tables in, predictions out) or llm (vLLM, OpenAI's API)."),
    ] = None,
    cpu: Annotated[float | None, typer.Option(help="CPUs per replica.")] = None,
    gpu: Annotated[float | None, typer.Option(help="GPUs per replica (fractions allowed).")] = None,
    memory: Annotated[float | None, typer.Option(help="GiB of memory per replica.")] = None,
    max_model_len: Annotated[
        int | None, typer.Option(help="llm: longest prompt plus answer, in tokens.")
    ] = None,
    dtype: Annotated[
        str | None, typer.Option(help="llm: auto, float32, bfloat16 or float16.")
    ] = None,
    tensor_parallel_size: Annotated[
        int | None, typer.Option(help="llm: GPUs one replica's engine spans.")
    ] = None,
    gpu_memory_utilization: Annotated[
        float | None, typer.Option(help="llm: share of each GPU's memory the engine takes.")
    ] = None,
    enable_prefix_caching: Annotated[
        bool | None,
        typer.Option("--enable-prefix-caching/--no-prefix-caching", help="llm: reuse prompts' KV."),
    ] = None,
    max_num_seqs: Annotated[
        int | None, typer.Option(help="llm: sequences one replica runs at once.")
    ] = None,
    requests_per_minute: Annotated[
        int | None, typer.Option(help="Calls each key (or member) may make per minute.")
    ] = None,
    tokens_per_minute: Annotated[
        int | None, typer.Option(help="llm: tokens each key (or member) may use per minute.")
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option(help="Batch up to this many calls per prediction.")
    ] = None,
    batch_wait: Annotated[float, typer.Option(help="Seconds a batch waits to fill up.")] = 0.01,
    env: Annotated[list[str] | None, typer.Option(help="KEY=VALUE for the replicas.")] = None,
    anonymous: Annotated[
        bool, typer.Option(help="Anyone may call it, without a token or key.")
    ] = False,
    wait: WaitOption = True,
    timeout: TimeoutOption = 300,
    json_: JsonOption = False,
) -> None:
    """Serve registered model versions at /serve/PROJECT/NAME (a new revision if it exists)."""
    spec = (
        read_mapping(file, "an endpoint spec is a mapping (versions, replicas, ...)")
        if file
        else {}
    )
    if model:
        spec["versions"] = [_traffic(value) for value in model]
    if "versions" not in spec:
        raise CliError("name what to serve: --model MODEL[@VERSION] or --file SPEC.yaml")
    if replicas is not None:
        spec["replicas"] = replicas
    if max_replicas is not None:
        spec["autoscaling"] = {"min_replicas": min_replicas or 0, "max_replicas": max_replicas}
    elif min_replicas is not None:
        raise CliError("--min-replicas needs --max-replicas")
    if kind is not None:
        spec["kind"] = kind.value
    for field, value in (("cpu", cpu), ("gpu", gpu), ("memory_gib", memory)):
        if value is not None:
            spec[field] = value
    engine = {
        name: value
        for name, value in (
            ("max_model_len", max_model_len),
            ("dtype", dtype),
            ("tensor_parallel_size", tensor_parallel_size),
            ("gpu_memory_utilization", gpu_memory_utilization),
            ("enable_prefix_caching", enable_prefix_caching),
            ("max_num_seqs", max_num_seqs),
        )
        if value is not None
    }
    if engine:
        spec["engine"] = {**spec.get("engine", {}), **engine}
    limit = {
        name: value
        for name, value in (
            ("requests_per_minute", requests_per_minute),
            ("tokens_per_minute", tokens_per_minute),
        )
        if value is not None
    }
    if limit:
        spec["rate_limit"] = {**spec.get("rate_limit", {}), **limit}
    if batch_size is not None:
        spec["batching"] = {"max_batch_size": batch_size, "batch_wait_timeout_s": batch_wait}
    if env:
        spec["env"] = split_pairs(env, "--env")
    if anonymous:
        spec["anonymous"] = True
    with connect() as client:
        endpoint = client.apply_endpoint(project, name, spec)
        _changed(client, project, endpoint, wait, timeout, json_)


@app.command("list")
def list_(project: str, json_: JsonOption = False) -> None:
    """The project's endpoints and their state."""
    with connect() as client:
        found = client.list_endpoints(project)
    if json_:
        print_json(found)
        return
    print_table(
        ["NAME", "STATUS", "REVISION", "TRAFFIC", "CALLS", "UPDATED"],
        (
            [
                e.name,
                e.status,
                e.revision,
                _weights(e.spec),
                e.metrics["requests"],
                when(e.updated_at),
            ]
            for e in found
        ),
        empty="no endpoints",
    )


def _weights(spec: dict[str, Any]) -> str:
    return ", ".join(f"{v['model']}@{v['version']}={v['weight']:g}" for v in spec["versions"])


@app.command()
def show(project: str, name: str, json_: JsonOption = False) -> None:
    """An endpoint: its spec, Serve's state, and the calls this server passed to it."""
    with connect() as client:
        endpoint = client.get_endpoint(project, name)
    if json_:
        print_json(endpoint)
        return
    spec = endpoint.spec
    metrics = endpoint.metrics
    print_fields(
        {
            "endpoint": endpoint.name,
            "url": f"{endpoint.url}/predict",
            "status": endpoint.status,
            "message": endpoint.message,
            "revision": endpoint.revision,
            "traffic": _weights(spec),
            "mirror": f"{spec['mirror']['model']}@{spec['mirror']['version']} "
            f"{spec['mirror']['percent']:g}%"
            if spec.get("mirror")
            else None,
            "replicas": spec["autoscaling"] or spec["replicas"],
            "per replica": {"cpu": spec["cpu"], "gpu": spec["gpu"]},
            "holds": endpoint.resources,
            "deployments": {
                k: f"{v['status']} x{v['replicas']}" for k, v in endpoint.deployments.items()
            },
            "calls": metrics["requests"],
            "errors": metrics["errors"],
            "anonymous": spec["anonymous"],
        }
    )


@app.command()
def traffic(
    project: str,
    name: str,
    weights: Annotated[list[str], typer.Argument(help="VERSION=WEIGHT or MODEL@VERSION=WEIGHT.")],
    wait: WaitOption = True,
    timeout: TimeoutOption = 300,
    json_: JsonOption = False,
) -> None:
    """Split traffic between versions, e.g. `3=80 4=20` for a 20% canary."""
    split = {}
    for key, value in split_pairs(weights, "WEIGHTS").items():
        try:
            split[key] = float(value)
        except ValueError:
            raise CliError(f"{key}={value}: the weight must be a number") from None
    with connect() as client:
        endpoint = client.set_endpoint_traffic(project, name, split)
        _changed(client, project, endpoint, wait, timeout, json_)


@app.command()
def promote(
    project: str,
    name: str,
    version: Annotated[
        str | None, typer.Argument(help="VERSION or MODEL@VERSION; default the newest served.")
    ] = None,
    wait: WaitOption = True,
    timeout: TimeoutOption = 300,
    json_: JsonOption = False,
) -> None:
    """Send all traffic to one version."""
    with connect() as client:
        endpoint = client.promote_endpoint(project, name, version)
        _changed(client, project, endpoint, wait, timeout, json_)


@app.command()
def rollback(
    project: str,
    name: str,
    revision: Annotated[
        int | None, typer.Option(help="Go back to this revision; default the previous one.")
    ] = None,
    wait: WaitOption = True,
    timeout: TimeoutOption = 300,
    json_: JsonOption = False,
) -> None:
    """Serve the previous revision's spec again."""
    with connect() as client:
        endpoint = client.rollback_endpoint(project, name, revision)
        _changed(client, project, endpoint, wait, timeout, json_)


@app.command()
def revisions(project: str, name: str, json_: JsonOption = False) -> None:
    """Every spec the endpoint has had, newest first."""
    with connect() as client:
        found = client.endpoint_revisions(project, name)
    if json_:
        print_json(found)
        return
    print_table(
        ["REVISION", "ACTION", "TRAFFIC", "BY", "AT", "MESSAGE"],
        (
            [
                r.revision,
                r.action,
                _weights(r.spec),
                r.user,
                when(r.created_at),
                r.message,
            ]
            for r in found
        ),
        empty="no revisions",
        wrap=("MESSAGE",),
    )


@app.command()
def delete(project: str, name: str) -> None:
    """Stop serving and free the endpoint's resources."""
    with connect() as client:
        client.delete_endpoint(project, name)
    typer.echo(f"endpoint {name} deleted")


@app.command()
def call(
    project: str,
    name: str,
    data: Annotated[
        str | None,
        typer.Option(
            "--data", "-d", help='JSON, e.g. \'{"instances": [{"x": 1}]}\'; @FILE reads a file.'
        ),
    ] = None,
    version: Annotated[
        str | None, typer.Option(help="Ask this version (MODEL@VERSION), whatever the weights.")
    ] = None,
) -> None:
    """Call the endpoint's predict route and print its answer."""
    if data is None:
        raise CliError("give the request body with --data JSON (or --data @FILE)")
    text = Path(data[1:]).read_text() if data.startswith("@") else data
    try:
        body = json.loads(text)
    except ValueError as exc:
        raise CliError(f"--data is not JSON: {exc}") from None
    instances = body.get("instances") if isinstance(body, dict) else None
    if not isinstance(instances, list):
        raise CliError('--data must be an object with "instances": [...]')
    with connect() as client:
        answer = client.predict(project, name, instances, version=version)
    print_json(answer)


@keys.command("create")
def create_key(project: str, name: str, key_name: str, json_: JsonOption = False) -> None:
    """A key that calls this endpoint only; shown once."""
    with connect() as client:
        key = client.create_endpoint_key(project, name, key_name)
    if json_:
        print_json(key)
    else:
        typer.echo(key.key)
        typer.echo(
            f"key {key.id} ({key_name}): shown once; send it as 'Authorization: Bearer KEY'",
            err=True,
        )


@keys.command("list")
def list_keys(project: str, name: str, json_: JsonOption = False) -> None:
    with connect() as client:
        found = client.list_endpoint_keys(project, name)
    if json_:
        print_json(found)
        return
    print_table(
        ["ID", "NAME", "PREFIX", "CREATED", "REVOKED"],
        ([k.id, k.name, k.prefix, when(k.created_at), when(k.revoked_at)] for k in found),
        empty="no keys",
    )


@keys.command("revoke")
def revoke_key(project: str, name: str, key_id: int) -> None:
    with connect() as client:
        client.revoke_endpoint_key(project, name, key_id)
    typer.echo(f"key {key_id} revoked")
