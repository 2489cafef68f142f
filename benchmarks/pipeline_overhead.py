"""What a pipeline step costs: a 20-task chain of diamonds of no-op tasks through Fabric's
scheduler, against the same tasks as bare Ray Jobs submitted in dependency order.

On a throw-away embedded default (`fabric up` in a temporary FABRIC_HOME, on free ports):

- Fabric: the pipeline is applied and run (`shell` tasks running `true`, on the warm runner,
  as every task without workers is); the run is polled every 20 ms until it ends.
- bare Ray Jobs: a plain script submits each task's `python -m jobs.shell --command true`
  with `JobSubmissionClient` as soon as its upstream jobs succeeded, polling every 20 ms.

Per-step overhead = (wall - critical-path compute) / steps on the critical path, where a
step's compute is what `bash -c true` takes here (measured, a few ms). The goal: at most
0.5 s per step. A warm-up run of each goes first (the warm runner's start, Ray's workers).

    .venv/bin/python benchmarks/pipeline_overhead.py [--diamonds 6]

Prints one JSON line on stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from fabric.config import Settings
from fabric.embedded import Embedded

COMMAND = "true"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def dag(diamonds: int) -> dict[str, list[str]]:
    """start -> (left_1, right_1) -> join_1 -> ... -> join_N -> end: each task's upstream."""
    tasks: dict[str, list[str]] = {"start": []}
    last = "start"
    for number in range(1, diamonds + 1):
        left, right, join = f"left_{number}", f"right_{number}", f"join_{number}"
        tasks[left], tasks[right], tasks[join] = [last], [last], [left, right]
        last = join
    tasks["end"] = [last]
    return tasks


def critical_steps(tasks: dict[str, list[str]]) -> int:
    depth: dict[str, int] = {}
    for name, after in tasks.items():  # listed in dependency order
        depth[name] = 1 + max((depth[other] for other in after), default=0)
    return max(depth.values())


def _step_compute() -> float:
    """What one no-op task computes: the median of `bash -c true` here."""
    times = []
    for _ in range(20):
        began = time.perf_counter()
        subprocess.run(["bash", "-c", COMMAND], check=True)
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def _fabric_run(client: httpx.Client, pipeline: str) -> float:
    runs = f"/api/v1/projects/bench/pipelines/{pipeline}/runs"
    began = time.perf_counter()
    run = client.post(runs, json={}).json()
    while run["status"] not in ("SUCCEEDED", "FAILED", "CANCELLED"):
        time.sleep(0.02)
        run = client.get(f"{runs}/{run['id']}").json()
    if run["status"] != "SUCCEEDED":
        raise RuntimeError(f"the pipeline run ended {run['status']}: {run['message']}")
    return time.perf_counter() - began


def _ray_jobs(ray: Any, tasks: dict[str, list[str]]) -> float:
    """Each task as a Ray Job, submitted once its upstream jobs succeeded."""
    entrypoint = f"python -m jobs.shell --command {COMMAND}"
    # Each job's files in a folder of its own, as Fabric gives it.
    runs = Path(tempfile.mkdtemp(prefix="fabric-bench-runs-"))
    began = time.perf_counter()
    submitted: dict[str, str] = {}
    done: set[str] = set()
    while len(done) < len(tasks):
        for name, after in tasks.items():
            if name not in submitted and all(other in done for other in after):
                env = {"FABRIC_RUN_DIR": str(runs / name)}
                submitted[name] = ray.submit_job(
                    entrypoint=entrypoint,
                    entrypoint_num_cpus=0.1,
                    runtime_env={"env_vars": env},
                )
        for name, job in submitted.items():
            if name in done:
                continue
            status = ray.get_job_status(job).value
            if status == "SUCCEEDED":
                done.add(name)
            elif status in ("FAILED", "STOPPED"):
                raise RuntimeError(f"bare Ray job {name} ended {status}")
        time.sleep(0.02)
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--diamonds", type=int, default=6, help="6 makes 20 tasks")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="fabric-bench-"))
    password = secrets.token_urlsafe(18)
    os.environ.update(
        {
            "FABRIC_HOME": str(home),
            "FABRIC_RAY_FOLDER": str(home / "ray"),
            "FABRIC_ADMIN_PASSWORD": password,
            "FABRIC_PORT": str(_free_port()),
            "FABRIC_RAY_GCS_PORT": str(_free_port()),
            "FABRIC_RAY_DASHBOARD_PORT": str(_free_port()),
            "FABRIC_RAY_CLIENT_PORT": str(_free_port()),
            "FABRIC_RAY_DASHBOARD_AGENT_PORT": str(_free_port()),
        }
    )
    embedded = Embedded(Settings())
    _log("starting the embedded default (Ray head + server)")
    embedded.up()
    try:
        result = _measure(embedded, password, dag(args.diamonds))
    finally:
        embedded.down()
        shutil.rmtree(home, ignore_errors=True)
    print(json.dumps(result))


def _measure(embedded: Embedded, password: str, tasks: dict[str, list[str]]) -> dict[str, Any]:
    from ray.job_submission import JobSubmissionClient

    url = embedded.url
    token = httpx.post(
        f"{url}/api/v1/auth/login", json={"username": "admin", "password": password}
    ).json()["access_token"]
    client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    client.post("/api/v1/projects", json={"name": "bench"}).raise_for_status()
    spec = {
        "parallelism": 20,
        "tasks": {
            name: {
                "template": "shell",
                "params": {"command": COMMAND},
                "resources": {"cpu": 0.1},
                "after": after,
            }
            for name, after in tasks.items()
        },
    }
    client.put("/api/v1/projects/bench/pipelines/diamonds", json=spec).raise_for_status()
    ray = JobSubmissionClient(
        embedded.head.dashboard_url,
        headers={"Authorization": f"Bearer {embedded.head.token()}"},
    )
    steps = critical_steps(tasks)
    compute = steps * _step_compute()
    _log("warm-up: one run of each")
    _fabric_run(client, "diamonds")
    _ray_jobs(ray, {"start": []})
    _log(f"Fabric: {len(tasks)} tasks, {steps} on the critical path")
    fabric_wall = _fabric_run(client, "diamonds")
    _log("bare Ray Jobs")
    ray_wall = _ray_jobs(ray, tasks)
    client.close()
    fabric_step = (fabric_wall - compute) / steps
    ray_step = (ray_wall - compute) / steps
    return {
        "benchmark": "pipeline_overhead",
        "tasks": len(tasks),
        "critical_path_steps": steps,
        "critical_path_compute_s": round(compute, 3),
        "fabric_wall_s": round(fabric_wall, 2),
        "ray_jobs_wall_s": round(ray_wall, 2),
        "fabric_step_overhead_s": round(fabric_step, 3),
        "ray_jobs_step_overhead_s": round(ray_step, 3),
        "ratio_ray_jobs_over_fabric": round(ray_step / fabric_step, 1),
        "goal_step_le_0_5_s": fabric_step <= 0.5,
    }


if __name__ == "__main__":
    main()
