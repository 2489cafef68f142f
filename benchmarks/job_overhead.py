"""What Fabric adds to a Ray job: submit-to-start and submit-to-end of a no-op entrypoint.

In one run, on a throw-away embedded default (`fabric up` in a temporary FABRIC_HOME, on free
ports), it alternates the same job through Fabric's API (admission, audit, reconciler),
through Fabric's Ray Jobs door with `JobSubmissionClient`, and with `JobSubmissionClient`
straight at the Ray head, polling each every 20 ms. "start" is
when the job is first seen RUNNING (or ended), "end" when it is seen ended. Fabric learns of
Ray's state changes from its reconciler, every FABRIC_SYNC_INTERVAL_SECONDS (default 0.2 s):
that interval bounds what Fabric adds, and `--sync-interval` sets it for the run.

    .venv/bin/python benchmarks/job_overhead.py [--runs 5] [--sync-interval 0.2]

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
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from fabric.config import Settings
from fabric.embedded import Embedded

ENTRYPOINT = "python -c pass"
ENDED = {"SUCCEEDED", "FAILED", "STOPPED"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _time(submit: Callable[[], str], status: Callable[[str], str]) -> tuple[float, float]:
    """Seconds from submit to first seen running, and to seen ended."""
    began = time.perf_counter()
    job = submit()
    started = None
    while True:
        state = status(job)
        now = time.perf_counter() - began
        if started is None and state in ENDED | {"RUNNING"}:
            started = now
        if state in ENDED:
            if state != "SUCCEEDED":
                raise RuntimeError(f"the benchmark job ended {state}")
            return started, now
        time.sleep(0.02)


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sync-interval", type=float, default=0.2)
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="fabric-bench-"))
    password = secrets.token_urlsafe(18)
    env = {
        "FABRIC_HOME": str(home),
        "FABRIC_RAY_FOLDER": str(home / "ray"),
        "FABRIC_ADMIN_PASSWORD": password,
        "FABRIC_PORT": str(_free_port()),
        "FABRIC_RAY_GCS_PORT": str(_free_port()),
        "FABRIC_RAY_DASHBOARD_PORT": str(_free_port()),
        "FABRIC_RAY_CLIENT_PORT": str(_free_port()),
        "FABRIC_RAY_DASHBOARD_AGENT_PORT": str(_free_port()),
        "FABRIC_SYNC_INTERVAL_SECONDS": str(args.sync_interval),
    }
    os.environ.update(env)
    embedded = Embedded(Settings())
    _log("starting the embedded default (Ray head + server)")
    embedded.up()
    try:
        result = _measure(embedded, password, args.runs)
    finally:
        embedded.down()
        shutil.rmtree(home, ignore_errors=True)
    result["sync_interval_s"] = args.sync_interval
    print(json.dumps(result))


def _measure(embedded: Embedded, password: str, runs: int) -> dict[str, object]:
    # Imported here: only the baseline needs Ray's own client.
    from ray.job_submission import JobSubmissionClient

    url = embedded.url
    token = httpx.post(
        f"{url}/api/v1/auth/login", json={"username": "admin", "password": password}
    ).json()["access_token"]
    fabric = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    fabric.post("/api/v1/projects", json={"name": "bench"}).raise_for_status()
    ray = JobSubmissionClient(
        embedded.head.dashboard_url,
        headers={"Authorization": f"Bearer {embedded.head.token()}"},
    )

    def fabric_submit() -> str:
        body = {"entrypoint": ENTRYPOINT, "resources": {"cpu": 0.1}}
        return str(fabric.post("/api/v1/projects/bench/jobs", json=body).json()["id"])

    def fabric_status(job_id: str) -> str:
        return fabric.get(f"/api/v1/projects/bench/jobs/{job_id}").json()["status"]

    def ray_submit() -> str:
        return ray.submit_job(entrypoint=ENTRYPOINT, entrypoint_num_cpus=0.1)

    def ray_status(submission_id: str) -> str:
        return ray.get_job_status(submission_id).value

    door = JobSubmissionClient(f"{url}/ray/bench", headers={"Authorization": f"Bearer {token}"})

    def door_submit() -> str:
        return door.submit_job(entrypoint=ENTRYPOINT, entrypoint_num_cpus=0.1)

    def door_status(job: str) -> str:
        return door.get_job_status(job).value

    samples: dict[str, list[tuple[float, float]]] = {"fabric": [], "door": [], "ray": []}
    _time(ray_submit, ray_status)  # warm-up: the first job on a new head is slower
    for run in range(runs):
        _log(f"run {run + 1}/{runs}")
        samples["ray"].append(_time(ray_submit, ray_status))
        samples["fabric"].append(_time(fabric_submit, fabric_status))
        samples["door"].append(_time(door_submit, door_status))
    fabric.close()

    def summary(name: str) -> dict[str, float]:
        starts, ends = zip(*samples[name], strict=True)
        return {
            "submit_to_start_s": round(statistics.median(starts), 3),
            "submit_to_end_s": round(statistics.median(ends), 3),
        }

    fab, through_door, bare = summary("fabric"), summary("door"), summary("ray")
    added = round(fab["submit_to_end_s"] - bare["submit_to_end_s"], 3)
    door_added = round(through_door["submit_to_end_s"] - bare["submit_to_end_s"], 3)
    return {
        "benchmark": "job_overhead",
        "runs": runs,
        "fabric": fab,
        "ray_door": through_door,
        "ray_direct": bare,
        "end_ratio": round(fab["submit_to_end_s"] / bare["submit_to_end_s"], 2),
        "door_end_ratio": round(through_door["submit_to_end_s"] / bare["submit_to_end_s"], 2),
        "added_s": added,
        "door_added_s": door_added,
        "goal_added_le_0_3_s": max(added, door_added) <= 0.3,
    }


if __name__ == "__main__":
    main()
