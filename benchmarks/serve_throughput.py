"""Online inference: requests/s and latency of one model behind bare uvicorn+FastAPI, behind
Serve on its own port, and behind a Fabric endpoint (the server's `/serve` door in front).

Two models, each served three ways in one run on a throw-away embedded default (`fabric up`
in a temporary FABRIC_HOME, on free ports):
- `sklearn`: a logistic regression on two features; its endpoint does not batch.
- `torch`: a wide TorchScript MLP whose forward pass on one row costs several milliseconds
  (measured and reported), about as much as on 16 rows: its endpoint batches
  (`max_batch_size` 16, `batch_wait_timeout_s` 0.005).
(a) `bare`: one uvicorn process with a FastAPI app that reads the rows, predicts and answers
    with the same code as the model server (`fabric.runtime.model_files`, `serve_apps.classic`);
(b) `fabric`: the model registered and an endpoint created through Fabric's API, loaded at
    `{server}/serve/{project}/{endpoint}/predict` with a bearer token;
(c) `serve`: the same Serve application called on Serve's own port, no Fabric in front.
Every model process runs torch on one thread (Serve's replicas of 0.5 CPU get one).

Load comes from `wrk` (`apt-get install -y wrk`): 16 connections, one thread, POSTing one
instance, for `--duration` seconds after `--warmup` seconds; the targets take turns,
`--rounds` times, and the report gives each one's median. wrk's own CPU per request is
measured, and its rate against a bare `GET /ping`, to show it is not the bottleneck. With
`--ingress haproxy` the Ray head runs Serve's HAProxy ingress instead of its Python proxy.

    .venv/bin/python benchmarks/serve_throughput.py [--duration 5] [--warmup 2] [--rounds 1]
        [--ingress proxy|haproxy] [--concurrency 16]

Prints one JSON line on stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Request, Response

from fabric.runtime import model_files
from serve_apps.classic import frame_of, plain
from serve_apps.router import read_rows

ROOT = Path(__file__).resolve().parents[1]
PROJECT = "bench"
FEATURES = ["x", "z"]
INSTANCE = {"instance": {"x": 3.0, "z": 4.0}}
BATCHING = {"max_batch_size": 16, "batch_wait_timeout_s": 0.005}
MODELS_VARIABLE = "SERVE_THROUGHPUT_MODELS"
START_TIMEOUT_S = 60.0
DEPLOY_TIMEOUT_S = 300.0
# Printed by wrk when its run ends: the figures, as one JSON line.
WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = os.getenv("WRK_BODY")
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "non_2xx": %d, '
    .. '"socket_errors": %d}\\n', summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), e.status,
    e.connect + e.read + e.write + e.timeout))
end
"""
PING_SCRIPT = WRK_SCRIPT.replace('wrk.method = "POST"', 'wrk.method = "GET"')

_T0 = time.perf_counter()


def say(message: str) -> None:
    print(f"[{time.perf_counter() - _T0:6.1f}s] {message}", file=sys.stderr, flush=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ok(response: httpx.Response) -> httpx.Response:
    if response.is_error:
        request = response.request
        raise RuntimeError(
            f"{request.method} {request.url.path}: {response.status_code} {response.text}"
        )
    return response


# (a) The baseline: one process, the model server's own code, nothing else.


@contextlib.asynccontextmanager
async def _load_models(app: FastAPI) -> AsyncIterator[None]:
    """The models named in the environment, loaded before the server takes requests."""
    models = json.loads(os.environ[MODELS_VARIABLE])
    app.state.models = {name: model_files.load(uri, kind) for name, (uri, kind) in models.items()}
    yield


baseline_app = FastAPI(title="serve_throughput baseline", lifespan=_load_models)


@baseline_app.get("/ping")
async def baseline_ping() -> dict[str, str]:
    return {"status": "ready"}


@baseline_app.post("/{name}/predict")
async def baseline_predict(name: str, request: Request) -> Response:
    model = request.app.state.models[name]
    rows, single = read_rows(await request.body())
    predictions = plain(model.predict(frame_of(rows, model.features)))
    body = {"prediction": predictions[0]} if single else {"predictions": predictions}
    return Response(json.dumps(body), media_type="application/json")


@contextmanager
def bare_server(models: dict[str, tuple[str, str]], log: Path) -> Iterator[str]:
    """Run the baseline with uvicorn on a free loopback port until the block ends."""
    port = _free_port()
    command = [sys.executable, "-m", "uvicorn", "benchmarks.serve_throughput:baseline_app"]
    command += ["--app-dir", str(ROOT), "--host", "127.0.0.1", "--port", str(port)]
    command += ["--log-level", "warning"]
    env = {**os.environ, MODELS_VARIABLE: json.dumps(models), "OMP_NUM_THREADS": "1"}
    url = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=out, stderr=out)
        try:
            _wait(lambda: httpx.get(f"{url}/ping", timeout=2).status_code == 200, log)
            yield url
        finally:
            process.terminate()
            process.wait(timeout=15)


def _wait(ready: Any, log: Path | None = None, timeout: float = START_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if ready():
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(
        f"not ready after {timeout:.0f} s" + (f":\n{log.read_text()}" if log else "")
    )


# The models.


def make_models(folder: Path, width: int, layers: int) -> dict[str, Any]:
    """The two models' files, and what one forward pass of the MLP costs on one thread."""
    import joblib
    import numpy as np
    import pandas as pd
    import torch
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.uniform(0, 20, 200), "z": rng.uniform(0, 10, 200)})
    joblib.dump(
        LogisticRegression().fit(frame, (frame["x"] + frame["z"] > 15).astype(int)),
        folder / "model.joblib",
    )
    torch.manual_seed(0)
    torch.set_num_threads(1)
    modules: list[torch.nn.Module] = [torch.nn.Linear(len(FEATURES), width), torch.nn.ReLU()]
    for _ in range(layers - 1):
        modules += [torch.nn.Linear(width, width), torch.nn.ReLU()]
    net = torch.nn.Sequential(*modules, torch.nn.Linear(width, 1)).eval()
    torch.jit.save(
        torch.jit.script(net), folder / "model.pt", _extra_files={"features": json.dumps(FEATURES)}
    )
    return {
        "files": {
            "sklearn": (folder / "model.joblib", "sklearn"),
            "torch": (folder / "model.pt", "torchscript"),
        },
        "torch_model": {
            "width": width,
            "hidden_layers": layers,
            "parameters": sum(p.numel() for p in net.parameters()),
            "threads": 1,
            "forward_ms_1_row": _forward_ms(net, 1),
            "forward_ms_16_rows": _forward_ms(net, 16),
        },
    }


def _forward_ms(net: Any, rows: int, repeats: int = 50) -> float:
    """The median of `repeats` forward passes over `rows` rows, in milliseconds."""
    import torch

    batch = torch.rand(rows, len(FEATURES))
    times = []
    with torch.no_grad():
        for _ in range(5):
            net(batch)
        for _ in range(repeats):
            began = time.perf_counter()
            net(batch)
            times.append(time.perf_counter() - began)
    return round(statistics.median(times) * 1000, 2)


# (b) Fabric: a registered model version behind an endpoint, through the server's API.


def fabric_endpoint(
    server_url: str,
    token: str,
    project: str,
    name: str,
    source: Path,
    framework: str,
    batching: dict[str, float] | None,
) -> str:
    """Register `source` (a file in the project's storage) as a version of model `name`, serve
    it as endpoint `name`, wait until it runs; the URL that predicts with it."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=server_url, headers=headers, timeout=60) as client:
        registered = client.post(
            f"/api/v1/projects/{project}/models/{name}/versions",
            json={"source": str(source), "framework": framework},
        )
        version = _ok(registered).json()["version"]
        spec = {
            "versions": [{"model": name, "version": version, "weight": 100}],
            "replicas": 1,
            "cpu": 0.5,
            "batching": batching,
        }
        _ok(client.put(f"/api/v1/projects/{project}/endpoints/{name}", json=spec))
        deadline = time.monotonic() + DEPLOY_TIMEOUT_S
        while True:
            endpoint = _ok(client.get(f"/api/v1/projects/{project}/endpoints/{name}")).json()
            if endpoint["status"] == "RUNNING":
                return f"{server_url}/serve/{project}/{name}/predict"
            if endpoint["status"] == "DEPLOY_FAILED" or time.monotonic() > deadline:
                raise RuntimeError(f"endpoint {name}: {endpoint['status']} {endpoint}")
            time.sleep(0.5)


# The throw-away platform.


def ingress_env(ingress: str, folder: Path) -> dict[str, str]:
    """What the Ray head needs for `ingress`. HAProxy's stats and metrics ports move off the
    fixed 8404 and 9101 (bound on every interface), so that two heads can run side by side,
    and its files from /tmp/haproxy-serve into `folder` (Serve adds a folder per node)."""
    if ingress != "haproxy":
        return {}
    files = {
        "CONFIG_FILE_LOC": "haproxy.cfg",
        "SOCKET_PATH": "admin.sock",
        "SERVER_STATE_FILE": "server-state",
        "METRICS_SOCKET_PATH": "metrics.sock",
    }
    return {
        "RAY_SERVE_ENABLE_HA_PROXY": "1",
        "RAY_SERVE_HAPROXY_STATS_PORT": str(_free_port()),
        "RAY_SERVE_HAPROXY_METRICS_PORT": str(_free_port()),
        "RAY_SERVE_HAPROXY_SERVER_STATE_BASE": str(folder),
        **{f"RAY_SERVE_HAPROXY_{name}": str(folder / file) for name, file in files.items()},
    }


@contextmanager
def platform(ingress: str) -> Iterator[dict[str, Any]]:
    """`fabric up` in a temporary home; the server's URL, the admin's token, Serve's port."""
    from fabric.config import Settings
    from fabric.embedded import Embedded

    home = Path(tempfile.mkdtemp(prefix="fsb-", dir="/tmp"))
    password = secrets.token_urlsafe(18)
    serve_port = _free_port()
    env = {
        "FABRIC_HOME": str(home),
        "FABRIC_RAY_FOLDER": str(home / "ray"),
        "FABRIC_ADMIN_PASSWORD": password,
        "FABRIC_PORT": str(_free_port()),
        "FABRIC_RAY_GCS_PORT": str(_free_port()),
        "FABRIC_RAY_DASHBOARD_PORT": str(_free_port()),
        "FABRIC_RAY_CLIENT_PORT": str(_free_port()),
        "FABRIC_RAY_DASHBOARD_AGENT_PORT": str(_free_port()),
        "FABRIC_RAY_SERVE_PORT": str(serve_port),
        **ingress_env(ingress, home / "haproxy"),
    }
    saved = dict(os.environ)
    os.environ.update(env)
    embedded = Embedded(Settings())
    try:
        embedded.up()
        login = {"username": "admin", "password": password}
        token = _ok(httpx.post(f"{embedded.url}/api/v1/auth/login", json=login)).json()
        yield {
            "url": embedded.url,
            "token": token["access_token"],
            "serve_url": f"http://127.0.0.1:{serve_port}",
            "haproxy_stats_port": env.get("RAY_SERVE_HAPROXY_STATS_PORT"),
            "storage": embedded.settings.storage_root,
        }
    finally:
        embedded.down()
        os.environ.clear()
        os.environ.update(saved)
        shutil.rmtree(home, ignore_errors=True)


# Load.


def wrk(url: str, args: argparse.Namespace, seconds: int, headers: dict[str, str]) -> dict:
    """One wrk run; its figures and the CPU time wrk itself used."""
    command = ["wrk", "-t1", f"-c{args.concurrency}", f"-d{seconds}s", "--timeout", "30s"]
    command += [arg for name, value in headers.items() for arg in ("-H", f"{name}: {value}")]
    with tempfile.TemporaryDirectory(prefix="serve-throughput-") as folder:
        script = Path(folder) / "load.lua"
        script.write_text(PING_SCRIPT if url.endswith("/ping") else WRK_SCRIPT)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        done = subprocess.run(
            [*command, "-s", str(script), url],
            env={**os.environ, "WRK_BODY": json.dumps(INSTANCE)},
            capture_output=True,
            text=True,
        )
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed on {url}: {done.stderr or done.stdout}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    requests = max(figures["requests"], 1)
    return {
        "rps": round(figures["requests"] * 1e6 / figures["duration_us"], 1),
        "p50_ms": round(figures["p50_us"] / 1000, 2),
        "p99_ms": round(figures["p99_us"] / 1000, 2),
        "requests": figures["requests"],
        "errors": figures["non_2xx"] + figures["socket_errors"],
        "wrk_cpu_us_per_request": round(cpu * 1e6 / requests, 1),
    }


def _median(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: round(statistics.median(run[key] for run in runs), 2) for key in runs[0]}


def compare(
    targets: dict[str, tuple[str, dict[str, str]]], args: argparse.Namespace
) -> dict[str, Any]:
    """The targets in turn, `--rounds` times each after a warm-up; medians and ratios."""
    for url, headers in targets.values():
        wrk(url, args, args.warmup, headers)
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in targets}
    for _ in range(args.rounds):
        for name, (url, headers) in targets.items():
            runs[name].append(wrk(url, args, args.duration, headers))
            say(f"  {name}: {runs[name][-1]}")
    result: dict[str, Any] = {name: _median(samples) for name, samples in runs.items()}
    for name in targets:
        if name != "bare":
            result[f"{name}_over_bare_rps"] = round(result[name]["rps"] / result["bare"]["rps"], 3)
    return result


# The run.


def run(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    made = make_models(folder, args.mlp_width, args.mlp_layers)
    say(f"torch MLP: {made['torch_model']}")
    files = {name: (str(path), kind) for name, (path, kind) in made["files"].items()}
    result: dict[str, Any] = {"torch_model": made["torch_model"]}
    with platform(args.ingress) as stage, bare_server(files, folder / "bare.log") as bare:
        say(f"platform up: server {stage['url']}, serve {stage['serve_url']}; bare {bare}")
        ping = wrk(f"{bare}/ping", args, args.duration, {})
        result["load_generator"] = {
            "tool": "wrk",
            "threads": 1,
            "bare_ping_rps": ping["rps"],
            "wrk_cpu_us_per_request": ping["wrk_cpu_us_per_request"],
        }
        fabric_auth = {"Authorization": f"Bearer {stage['token']}"}
        _ok(
            httpx.post(
                f"{stage['url']}/api/v1/projects", json={"name": PROJECT}, headers=fabric_auth
            )
        )
        storage = stage["storage"] / "projects" / PROJECT / "bench-models"
        storage.mkdir(parents=True, exist_ok=True)
        for name, (path, framework) in made["files"].items():
            batching = BATCHING if name == "torch" else None
            source = storage / path.name
            shutil.copy2(path, source)
            fabric = fabric_endpoint(
                stage["url"], stage["token"], PROJECT, name, source, framework, batching
            )
            targets = {
                "bare": (f"{bare}/{name}/predict", {}),
                "serve": (fabric.replace(stage["url"], stage["serve_url"]), {}),
                "fabric": (fabric, fabric_auth),
            }
            say(f"{name}: {', '.join(targets)}")
            result[name] = {"batching": batching, **compare(targets, args)}
        if stage["haproxy_stats_port"]:
            result["haproxy_frontend_requests"] = haproxy_requests(stage["haproxy_stats_port"])
    return result


def haproxy_requests(stats_port: str) -> int:
    """Requests HAProxy's HTTP frontend took: proof that the load went through it."""
    csv = httpx.get(f"http://127.0.0.1:{stats_port}/stats;csv", timeout=10).text.splitlines()
    header = csv[0].removeprefix("# ").split(",")
    for line in csv[1:]:
        row = dict(zip(header, line.split(","), strict=False))
        if (row["pxname"], row["svname"]) == ("http_frontend", "FRONTEND"):
            return int(row["req_tot"])
    raise RuntimeError("HAProxy's stats have no http_frontend")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds measured per run")
    parser.add_argument("--warmup", type=int, default=2, help="seconds before measuring")
    parser.add_argument("--rounds", type=int, default=1, help="turns each target takes")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--ingress", choices=["proxy", "haproxy"], default="proxy")
    parser.add_argument("--mlp-width", type=int, default=3072)
    parser.add_argument("--mlp-layers", type=int, default=3)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if shutil.which("wrk") is None:
        sys.exit("benchmarks/serve_throughput.py needs wrk on the PATH: apt-get install -y wrk")
    folder = Path(tempfile.mkdtemp(prefix="serve-throughput-"))
    try:
        measured = run(args, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    report = {
        "benchmark": "serve_throughput",
        "ingress": args.ingress,
        "concurrency": args.concurrency,
        "duration_s": args.duration,
        "rounds": args.rounds,
        "cores": os.cpu_count(),
        **measured,
        "elapsed_s": round(time.perf_counter() - _T0, 1),
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
