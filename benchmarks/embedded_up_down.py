"""How long `fabric up` and `fabric down` take on a fresh FABRIC_HOME, with work left running.

Each run makes a new FABRIC_HOME (free ports, its own short Ray folder), times the real
`fabric up` command, leaves a Ray Job and a warm-runner task (a pipeline's light step)
running, as a user who stops for the day would, then times the real `fabric down`. Up and
down alternate run after run. After each down it checks that no process of the Ray head's
or the server's session is left.

    .venv/bin/python benchmarks/embedded_up_down.py [--runs 3]

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

import httpx

FABRIC = str(Path(sys.executable).with_name("fabric"))
SLEEP = "python -c 'import time; time.sleep(600)'"
PIPELINE = {
    "name": "left-running",
    "tasks": {
        "light": {
            "template": "shell",
            "params": {"command": "sleep 600"},
            "resources": {"cpu": 0.1},
        }
    },
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _fabric(env: dict[str, str], command: str) -> float:
    """Seconds the real `fabric COMMAND` takes; it must succeed."""
    began = time.perf_counter()
    done = subprocess.run(
        [FABRIC, command], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    took = time.perf_counter() - began
    if done.returncode != 0:
        raise RuntimeError(f"fabric {command} failed:\n{done.stdout}{done.stderr}")
    return took


def _tree(roots: list[int]) -> set[int]:
    """The processes `roots` started, and theirs, with the roots: Ray starts a job's
    entrypoint in a session of its own, outside the head's process group."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
    found, grew = set(roots), True
    while grew:
        more = {pid for pid, parent in parents.items() if parent in found} - found
        found |= more
        grew = bool(more)
    return found


def _alive(pids: set[int]) -> set[int]:
    """Those of `pids` that still run (zombies, which their parent reaps, do not count)."""
    alive = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z":
            alive.add(pid)
    return alive


def _leave_work_running(url: str, password: str) -> None:
    """A Ray Job and a warm task, both seen RUNNING by Fabric."""
    token = httpx.post(
        f"{url}/api/v1/auth/login", json={"username": "admin", "password": password}
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=60) as fabric:
        fabric.post("/api/v1/projects", json={"name": "bench"}).raise_for_status()
        base = "/api/v1/projects/bench"
        job = {"entrypoint": SLEEP, "resources": {"cpu": 0.1}}
        fabric.post(f"{base}/jobs", json=job).raise_for_status()
        fabric.put(f"{base}/pipelines/{PIPELINE['name']}", json=PIPELINE).raise_for_status()
        fabric.post(f"{base}/pipelines/{PIPELINE['name']}/runs", json={}).raise_for_status()
        deadline = time.monotonic() + 180
        while True:
            jobs = fabric.get(f"{base}/jobs").json()
            running = [j for j in jobs if j["status"] == "RUNNING"]
            warm = [j for j in running if (j["submission_id"] or "").startswith("warm-")]
            if len(running) == 2 and len(warm) == 1:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the work did not start: {jobs}")
            time.sleep(0.2)


def _run(index: int) -> dict[str, float | bool]:
    home = Path(tempfile.mkdtemp(prefix="fabric-updown-"))
    ray_folder = Path(tempfile.mkdtemp(prefix="fud-", dir="/tmp"))
    password = secrets.token_urlsafe(18)
    port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("FABRIC_", "RAY_"))},
        "FABRIC_HOME": str(home),
        "FABRIC_RAY_FOLDER": str(ray_folder),
        "FABRIC_ADMIN_PASSWORD": password,
        "FABRIC_PORT": str(port),
        "FABRIC_RAY_GCS_PORT": str(_free_port()),
        "FABRIC_RAY_DASHBOARD_PORT": str(_free_port()),
        "FABRIC_RAY_CLIENT_PORT": str(_free_port()),
        "FABRIC_RAY_DASHBOARD_AGENT_PORT": str(_free_port()),
        "FABRIC_RAY_SERVE_PORT": str(_free_port()),
    }
    try:
        _log(f"run {index}: fabric up")
        up = _fabric(env, "up")
        _log(f"run {index}: leaving a Ray Job and a warm task running")
        _leave_work_running(f"http://127.0.0.1:{port}", password)
        roots = [int((ray_folder / "head.pid").read_text()), int((home / "server.pid").read_text())]
        started = _tree(roots)
        _log(f"run {index}: fabric down")
        down = _fabric(env, "down")
        return {"up_s": up, "down_s": down, "left_running": len(_alive(started))}
    finally:
        subprocess.run([FABRIC, "down"], env=env, capture_output=True, check=False)
        shutil.rmtree(home, ignore_errors=True)
        shutil.rmtree(ray_folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    samples = [_run(index + 1) for index in range(args.runs)]
    ups = [float(s["up_s"]) for s in samples]
    downs = [float(s["down_s"]) for s in samples]
    print(
        json.dumps(
            {
                "benchmark": "embedded_up_down",
                "runs": args.runs,
                "up_s": round(statistics.median(ups), 2),
                "down_s": round(statistics.median(downs), 2),
                "up_all_s": [round(s, 2) for s in ups],
                "down_all_s": [round(s, 2) for s in downs],
                "processes_left": sum(int(s["left_running"]) for s in samples),
                "goal_down_lt_10_s": max(downs) < 10,
            }
        )
    )


if __name__ == "__main__":
    main()
