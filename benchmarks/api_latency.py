"""API latency and admission throughput of the Fabric server, beside a bare FastAPI baseline.

What it measures, in one run, with the Fabric server and the baseline each in its own uvicorn
process on loopback:
- GET /api/v1/projects (a user's page of 20 projects) and POST /api/v1/projects: p50, p99,
  mean and requests/s at `--concurrency` clients, against a bare FastAPI app that serves a
  fixed list of the same shape behind a trivial bearer check (and echoes the POST). The two
  servers take turns, twice each, so that drift on the machine hits both alike; the report
  gives the Fabric/baseline ratios, of latency and of the server process's CPU time per
  request (a figure that other load on the machine disturbs less; it leaves out the
  PostgreSQL server's own CPU).
- Admissions through the quota path at `--admit-concurrency` clients: each asks for one GPU
  of a project whose concurrent GPU quota is 10, and releases it when admitted. Decisions/s
  (admitted or refused) and admitted/s; then, from the allocations the server recorded, the
  most ever held at once, which must not exceed the quota.

Each load worker has its own keep-alive connection. The default client writes HTTP/1.1 on an
asyncio stream: about 0.1 ms of CPU a request, where httpx takes about 2.4 ms, twice what the
bare baseline server spends, so that with httpx (`--client httpx`) a 2-core machine measures
mostly the client.

Run from the repository root:

    .venv/bin/python benchmarks/api_latency.py
    .venv/bin/python benchmarks/api_latency.py --database-url \\
        postgresql://postgres:PASSWORD@127.0.0.1:5432/postgres

With a PostgreSQL URL it creates a fresh database on that server and drops it at the end.
It prints one JSON line on stdout; progress goes to stderr. Linux only (it reads /proc).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from fastapi import Depends, FastAPI, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
PROJECTS_PATH = "/api/v1/projects"
PROJECTS = 20  # the size of the listed page, on both servers
ADMIT_PROJECT = "admissions"
ALLOCATIONS_PATH = f"{PROJECTS_PATH}/{ADMIT_PROJECT}/allocations"
GPU_LIMIT = 10
ROUNDS = 2  # turns each server takes per latency phase
LIST_P99_GOAL_MS = 50.0
ADMISSIONS_GOAL_PER_S = 200.0
BASELINE_TOKEN = "baseline-" + "0" * 32
DESCRIPTION = "a project of the api_latency benchmark"
START_TIMEOUT_S = 60.0
REQUEST_TIMEOUT_S = 60.0


# The baseline: FastAPI and uvicorn with nothing behind them. Its routes are sync functions,
# like Fabric's, so both pay the thread-pool hop and the pydantic serialisation.


class BaselineProject(BaseModel):
    name: str
    description: str
    created_at: datetime
    role: str | None = None


class BaselineProjectCreate(BaseModel):
    name: str
    description: str = ""


_bearer = HTTPBearer()
_BASELINE_PAGE = [
    BaselineProject(
        name=f"project-{i:02d}",
        description=DESCRIPTION,
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        role="owner",
    )
    for i in range(PROJECTS)
]


def _baseline_caller(credentials: HTTPAuthorizationCredentials = Depends(_bearer)) -> None:
    if credentials.credentials != BASELINE_TOKEN:
        raise HTTPException(status_code=401, detail="invalid token")


baseline_app = FastAPI(title="api_latency baseline")


@baseline_app.get("/readyz")
def baseline_ready() -> dict[str, str]:
    return {"status": "ready"}


@baseline_app.get(PROJECTS_PATH, dependencies=[Depends(_baseline_caller)])
def baseline_list() -> list[BaselineProject]:
    return _BASELINE_PAGE


@baseline_app.post(PROJECTS_PATH, status_code=201, dependencies=[Depends(_baseline_caller)])
def baseline_create(body: BaselineProjectCreate) -> BaselineProject:
    return BaselineProject(
        name=body.name, description=body.description, created_at=datetime.now(UTC), role="owner"
    )


# Server processes and databases.

_T0 = time.perf_counter()


def say(message: str) -> None:
    print(f"[{time.perf_counter() - _T0:6.1f}s] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Server:
    url: str
    pid: int

    def cpu_seconds(self) -> float:
        """User and system CPU time the server process has used so far."""
        stat = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server not ready after {START_TIMEOUT_S:.0f} s:\n{log.read_text()}")


@contextmanager
def serve(app: list[str], env: dict[str, str], log: Path) -> Iterator[Server]:
    """Run `uvicorn APP...` on a free loopback port until the block ends."""
    port = _free_port()
    command = [sys.executable, "-m", "uvicorn", *app, "--app-dir", str(ROOT)]
    command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=out, stderr=out)
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_ready(url, process, log)
            yield Server(url, process.pid)
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def fabric_env(home: Path, admin_password: str, database_url: str | None) -> dict[str, str]:
    """The caller's environment without its FABRIC_ settings, plus the benchmark's own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FABRIC_")}
    env |= {"FABRIC_HOME": str(home), "FABRIC_ADMIN_PASSWORD": admin_password}
    if database_url:
        env["FABRIC_DATABASE_URL"] = database_url
    return env


@contextmanager
def fresh_database(url: str | None) -> Iterator[str | None]:
    """A new PostgreSQL database on the server of `url`, dropped afterwards; others as given."""
    if not url or not url.startswith("postgresql"):
        yield url
        return
    name = f"fabric_bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(
        url.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


# Setup through the API.


@dataclass(frozen=True)
class Callers:
    """Authorization headers of the benchmark's Fabric users."""

    admin: dict[str, str]
    reader: dict[str, str]  # lists its 20 projects and asks for allocations
    creator: dict[str, str]  # creates projects, so that the reader's page keeps its size


def _ok(response: httpx.Response) -> httpx.Response:
    if response.is_error:
        request = response.request
        raise RuntimeError(
            f"{request.method} {request.url.path}: {response.status_code} {response.text}"
        )
    return response


def _login(client: httpx.Client, username: str, password: str) -> dict[str, str]:
    body = {"username": username, "password": password}
    token = _ok(client.post("/api/v1/auth/login", json=body)).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def _new_user(client: httpx.Client, admin: dict[str, str], username: str) -> dict[str, str]:
    password = secrets.token_urlsafe(18)
    body = {"username": username, "password": password}
    _ok(client.post("/api/v1/users", json=body, headers=admin))
    return _login(client, username, password)


def prepare(url: str, admin_password: str) -> Callers:
    """Users, the reader's page of projects, and the project whose GPU quota admissions test."""
    with httpx.Client(base_url=url, timeout=REQUEST_TIMEOUT_S) as client:
        admin = _login(client, "admin", admin_password)
        reader, creator = _new_user(client, admin, "bench"), _new_user(client, admin, "maker")
        for i in range(PROJECTS - 1):
            body = {"name": f"project-{i:02d}", "description": DESCRIPTION}
            _ok(client.post(PROJECTS_PATH, json=body, headers=reader))
        project = f"{PROJECTS_PATH}/{ADMIT_PROJECT}"
        _ok(client.post(PROJECTS_PATH, json={"name": ADMIT_PROJECT}, headers=admin))
        _ok(client.put(f"{project}/members/bench", json={"role": "member"}, headers=admin))
        quota = {"resource": "gpu", "kind": "concurrent", "limit": GPU_LIMIT}
        _ok(client.put(f"{project}/quotas", json=quota, headers=admin))
        page = _ok(client.get(PROJECTS_PATH, headers=reader)).json()
    if len(page) != PROJECTS:
        raise RuntimeError(f"the reader sees {len(page)} projects, expected {PROJECTS}")
    return Callers(admin, reader, creator)


# Load clients: one per worker, each with one keep-alive connection.

Response = tuple[int, bytes]


def _content_length(head: list[str]) -> int:
    for line in head[1:]:
        name, _, value = line.partition(":")
        if name.lower() == "content-length":
            return int(value)
    return 0


class StreamClient:
    """HTTP/1.1 on one asyncio stream: just enough for JSON requests to uvicorn."""

    def __init__(self, url: str) -> None:
        address = urlsplit(url)
        self._host, self._port = address.hostname, address.port
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def send(
        self, method: str, path: str, headers: dict[str, str], body: object = None
    ) -> Response:
        payload = b"" if body is None else json.dumps(body).encode()
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self._host}"]
        lines += [f"Content-Length: {len(payload)}", "Content-Type: application/json"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        try:
            if self._streams is None:
                self._streams = await asyncio.open_connection(self._host, self._port)
            reader, writer = self._streams
            writer.write("\r\n".join(lines).encode() + b"\r\n\r\n" + payload)
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            return int(head[0].split()[1]), await reader.readexactly(_content_length(head))
        except BaseException:
            self._drop()  # a failed or cancelled exchange leaves the connection unusable
            raise

    def _drop(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
            self._streams = None

    async def aclose(self) -> None:
        self._drop()


class HttpxClient:
    """The same through httpx, to compare: it costs the load generator far more CPU."""

    def __init__(self, url: str) -> None:
        self._client = httpx.AsyncClient(base_url=url, timeout=REQUEST_TIMEOUT_S)

    async def send(
        self, method: str, path: str, headers: dict[str, str], body: object = None
    ) -> Response:
        response = await self._client.request(method, path, headers=headers, json=body)
        return response.status_code, response.content

    async def aclose(self) -> None:
        await self._client.aclose()


Client = StreamClient | HttpxClient
CLIENTS: dict[str, Callable[[str], Client]] = {"stream": StreamClient, "httpx": HttpxClient}


# Load.


@dataclass
class Samples:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    elapsed: float = 0.0
    server_cpu: float = 0.0

    def summary(self) -> dict[str, float]:
        cuts = statistics.quantiles(self.latencies, n=100, method="inclusive")
        return {
            "p50_ms": round(cuts[49] * 1000, 2),
            "p99_ms": round(cuts[98] * 1000, 2),
            "mean_ms": round(statistics.fmean(self.latencies) * 1000, 2),
            "rps": round(len(self.latencies) / self.elapsed, 1),
            "cpu_ms_per_request": round(self.server_cpu * 1000 / len(self.latencies), 3),
            "requests": len(self.latencies),
            "errors": self.errors,
        }


@dataclass(frozen=True)
class Load:
    """Where the load goes and how: the server, the client kind, the number of workers."""

    server: Server
    connect: Callable[[str], Client]
    concurrency: int

    async def drive(self, total: int, step: Callable[[Client], Awaitable[None]]) -> float:
        """Run `step` `total` times over the workers; return the seconds it took."""
        counter = itertools.count()

        async def worker() -> None:
            client = self.connect(self.server.url)
            try:
                while next(counter) < total:
                    await step(client)
            finally:
                await client.aclose()

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(min(self.concurrency, total))))
        return time.perf_counter() - start

    async def warm_up(self, step: Callable[[Client], Awaitable[None]]) -> None:
        await self.drive(2 * self.concurrency, step)

    async def measure(
        self, total: int, step: Callable[[Client], Awaitable[None]], into: Samples
    ) -> None:
        """Drive `step`, adding the time it took and the server's CPU time to `into`."""
        cpu = self.server.cpu_seconds()
        into.elapsed += await self.drive(total, step)
        into.server_cpu += self.server.cpu_seconds() - cpu


async def timed(exchange: Awaitable[Response], samples: Samples) -> Response | None:
    """The response, its latency recorded; None, an error counted, if the exchange failed."""
    start = time.perf_counter()
    try:
        async with asyncio.timeout(REQUEST_TIMEOUT_S):
            response = await exchange
    except (OSError, EOFError, httpx.HTTPError):
        samples.errors += 1
        return None
    samples.latencies.append(time.perf_counter() - start)
    return response


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    headers: dict[str, str]
    expected: int
    body: Callable[[], object] = lambda: None

    def step(self, samples: Samples) -> Callable[[Client], Awaitable[None]]:
        """One timed call; a status other than `expected` counts as an error."""

        async def call(client: Client) -> None:
            exchange = client.send(self.method, self.path, self.headers, self.body())
            response = await timed(exchange, samples)
            if response is not None and response[0] != self.expected:
                samples.errors += 1

        return call


def _ratio(fabric: float, baseline: float) -> float:
    return round(fabric / baseline, 2)


async def compare(targets: dict[str, tuple[Load, Endpoint]], total: int) -> dict[str, Any]:
    """Fabric and the baseline in turn, `ROUNDS` times each; then the ratios."""
    samples = {name: Samples() for name in targets}
    for _ in range(ROUNDS):
        for name, (load, endpoint) in targets.items():
            await load.warm_up(endpoint.step(Samples()))
            await load.measure(total // ROUNDS, endpoint.step(samples[name]), samples[name])
    fabric, baseline = samples["fabric"].summary(), samples["baseline"].summary()
    return {
        "fabric": fabric,
        "baseline": baseline,
        "p50_ratio": _ratio(fabric["p50_ms"], baseline["p50_ms"]),
        "p99_ratio": _ratio(fabric["p99_ms"], baseline["p99_ms"]),
        "cpu_ratio": _ratio(fabric["cpu_ms_per_request"], baseline["cpu_ms_per_request"]),
    }


@dataclass
class Admissions:
    decisions: Samples = field(default_factory=Samples)
    releases: Samples = field(default_factory=Samples)
    admitted: int = 0
    refused: int = 0

    def step(self, caller: dict[str, str]) -> Callable[[Client], Awaitable[None]]:
        """Ask for one GPU; release it at once when admitted."""

        async def call(client: Client) -> None:
            asked = client.send("POST", ALLOCATIONS_PATH, caller, {"resources": {"gpu": 1}})
            response = await timed(asked, self.decisions)
            if response is None:
                return
            status, body = response
            if status == 409:
                self.refused += 1
            elif status != 201:
                self.decisions.errors += 1
            else:
                self.admitted += 1
                release = f"{ALLOCATIONS_PATH}/{json.loads(body)['id']}/release"
                released = await timed(client.send("POST", release, caller), self.releases)
                if released is not None and released[0] != 200:
                    self.releases.errors += 1

        return call

    def summary(self, concurrency: int) -> dict[str, Any]:
        elapsed, latency = self.decisions.elapsed, self.decisions.summary()
        return {
            "concurrency": concurrency,
            "decisions_per_s": round((self.admitted + self.refused) / elapsed, 1),
            "admitted_per_s": round(self.admitted / elapsed, 1),
            "admitted": self.admitted,
            "refused": self.refused,
            "errors": self.decisions.errors + self.releases.errors,
            "decision_p50_ms": latency["p50_ms"],
            "decision_p99_ms": latency["p99_ms"],
            "cpu_ms_per_decision": latency["cpu_ms_per_request"],  # its releases included
        }


async def admit(load: Load, caller: dict[str, str], total: int) -> dict[str, Any]:
    """Admission decisions per second at the load's concurrency."""
    await load.warm_up(Admissions().step(caller))
    tally = Admissions()
    await load.measure(total, tally.step(caller), tally.decisions)
    return tally.summary(load.concurrency)


async def run_load(
    args: argparse.Namespace, fabric: Server, baseline: Server, callers: Callers
) -> dict[str, Any]:
    connect = CLIENTS[args.client]
    on_fabric = Load(fabric, connect, args.concurrency)
    on_baseline = Load(baseline, connect, args.concurrency)
    token = {"Authorization": f"Bearer {BASELINE_TOKEN}"}
    names = map("new-{}".format, itertools.count())

    def new_project() -> dict[str, str]:
        return {"name": next(names)}

    say(f"list: {args.requests} requests per server at {args.concurrency} clients")
    listed = await compare(
        {
            "fabric": (on_fabric, Endpoint("GET", PROJECTS_PATH, callers.reader, 200)),
            "baseline": (on_baseline, Endpoint("GET", PROJECTS_PATH, token, 200)),
        },
        args.requests,
    )
    say(f"create: {args.requests} requests per server at {args.concurrency} clients")
    created = await compare(
        {
            "fabric": (
                on_fabric,
                Endpoint("POST", PROJECTS_PATH, callers.creator, 201, new_project),
            ),
            "baseline": (on_baseline, Endpoint("POST", PROJECTS_PATH, token, 201, new_project)),
        },
        args.requests,
    )
    say(f"admissions: {args.requests} decisions at {args.admit_concurrency} clients")
    admitting = Load(fabric, connect, args.admit_concurrency)
    admitted = await admit(admitting, callers.reader, args.requests)
    return {"list": listed, "create": created, "admissions": admitted}


# The over-admission check.


def max_held(allocations: list[dict[str, Any]], resource: str) -> float:
    """The most of `resource` that allocations held at once, from their recorded intervals.

    An allocation holds from created_at up to, not including, released_at: at equal instants a
    release is counted before an admission. The server stamps released_at before the release
    commits, and on PostgreSQL a release does not wait for admissions: one that commits while
    an admission decides can show here as one allocation more than that admission saw.
    """
    events = []
    for allocation in allocations:
        amount = allocation["resources"].get(resource, 0.0)
        events.append((datetime.fromisoformat(allocation["created_at"]), 1, amount))
        if allocation["released_at"]:
            events.append((datetime.fromisoformat(allocation["released_at"]), 0, -amount))
    held = peak = 0.0
    for _, _, delta in sorted(events):
        held += delta
        peak = max(peak, held)
    return peak


def check_allocations(url: str, caller: dict[str, str]) -> dict[str, Any]:
    allocations = _ok(httpx.get(url + ALLOCATIONS_PATH, headers=caller, timeout=60)).json()
    peak = max_held(allocations, "gpu")
    return {
        "limit": GPU_LIMIT,
        "max_concurrent_admitted": peak,
        "over_admitted": peak > GPU_LIMIT,
        "recorded": len(allocations),
        "active_at_end": sum(1 for a in allocations if a["state"] == "active"),
    }


# The run.


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url",
        help="Fabric's database; a postgresql:// URL gets a fresh database on that server "
        "(default: SQLite in a temporary FABRIC_HOME)",
    )
    parser.add_argument("--requests", type=int, default=1500, help="requests per phase and server")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--admit-concurrency", type=int, default=100)
    parser.add_argument("--client", choices=sorted(CLIENTS), default="stream")
    args = parser.parse_args()
    if args.requests < 10 * ROUNDS:
        parser.error(f"--requests must be at least {10 * ROUNDS}")
    return args


def report(args: argparse.Namespace, measured: dict[str, Any]) -> dict[str, Any]:
    url = args.database_url or "sqlite"
    admissions = measured["admissions"]
    return {
        "benchmark": "api_latency",
        "database": "postgresql" if url.startswith("postgresql") else "sqlite",
        "concurrency": args.concurrency,
        "requests": args.requests,
        "client": args.client,
        **measured,
        "goals": {
            "list_p99_le_50ms": measured["list"]["fabric"]["p99_ms"] <= LIST_P99_GOAL_MS,
            "admissions_ge_200_per_s": admissions["decisions_per_s"] >= ADMISSIONS_GOAL_PER_S,
            "zero_over_admission": not admissions["over_admitted"],
        },
        "elapsed_s": round(time.perf_counter() - _T0, 1),
    }


def main() -> None:
    args = parse_args()
    admin_password = secrets.token_urlsafe(18)
    with (
        tempfile.TemporaryDirectory(prefix="fabric-bench-") as tmp,
        fresh_database(args.database_url) as database_url,
    ):
        home = Path(tmp)
        env = fabric_env(home / "fabric", admin_password, database_url)
        fabric_app = ["--factory", "fabric.api.app:create_app"]
        baseline_app_path = ["benchmarks.api_latency:baseline_app"]
        with (
            serve(fabric_app, env, home / "fabric.log") as fabric,
            serve(baseline_app_path, env, home / "baseline.log") as baseline,
        ):
            say(f"fabric at {fabric.url}, baseline at {baseline.url}; setting up")
            callers = prepare(fabric.url, admin_password)
            measured = asyncio.run(run_load(args, fabric, baseline, callers))
            measured["admissions"] |= check_allocations(fabric.url, callers.reader)
    print(json.dumps(report(args, measured)))


if __name__ == "__main__":
    main()
