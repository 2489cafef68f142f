"""Jobs through the API: admission, queueing, the reconciler, logs, stop, timeout, retries,
metering and a server restart, on the session's real Ray head (and on the fake backend, with
PostgreSQL: tests/stacks.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, select

from fabric.auth import secrets
from fabric.backends.local_head import LocalRayHead
from fabric.config import Settings
from fabric.db.models import TokenModel, UsageModel
from tests.factories import create_project
from tests.jobs import TERMINAL, WAIT_FOR_GO, signal_go, wait_for
from tests.server import Server, running_server
from tests.stacks import RAY_ON_BOTH


def _submit(client: httpx.Client, project: str, **body: Any) -> httpx.Response:
    return client.post(f"/api/v1/projects/{project}/jobs", json=body)


def _wait(client: httpx.Client, project: str, job_id: int, statuses: set[str]) -> dict[str, Any]:
    path = f"/api/v1/projects/{project}/jobs/{job_id}"
    return wait_for(
        lambda: client.get(path).json(), statuses, stop=lambda: client.post(f"{path}/stop")
    )


# It reads the job back from Ray itself: on both databases, Ray it is.
@RAY_ON_BOTH
def test_job_runs_with_its_folders_and_token_and_is_metered(
    server: Server, ray_settings: dict[str, object]
) -> None:
    project = create_project(server)
    script = (
        "import os, pathlib, urllib.request\n"
        "run = pathlib.Path(os.environ['FABRIC_RUN_DIR'])\n"
        "(run / 'result.txt').write_text('done')\n"
        "pathlib.Path('relative.txt').write_text('in its run folder')\n"
        "req = urllib.request.Request(os.environ['FABRIC_URL'] + '/api/v1/users/me',"
        " headers={'Authorization': 'Bearer '"
        " + open(os.environ['FABRIC_JOB_TOKEN_FILE']).read()})\n"
        "print('acting as', urllib.request.urlopen(req).read().decode())\n"
        "print('greeting', os.environ['GREETING'])\n"
    )
    with server.client(project.member.token) as client:
        submitted = _submit(
            client,
            project.name,
            name="hello",
            entrypoint=f"python -c {script!r}".replace("\\n", "\n"),
            runtime_env={"env_vars": {"GREETING": "hi"}},
            resources={"cpu": 0.5},
        )
        assert submitted.status_code == 201, submitted.text
        job = _wait(client, project.name, submitted.json()["id"], TERMINAL)
        logs = client.get(f"/api/v1/projects/{project.name}/jobs/{job['id']}/logs").text
        usage = client.get(f"/api/v1/projects/{project.name}/usage").json()
        held = client.get(f"/api/v1/projects/{project.name}/allocations").json()
    # Admitted once (the reconciler never starts an admitted job again), released at the end.
    assert [(a["purpose"], a["state"]) for a in held] == [("job hello", "released")]
    assert job["status"] == "SUCCEEDED", logs
    assert job["started_at"] and job["ended_at"]
    assert "greeting hi" in logs
    assert f'"username":"{project.member.username}"' in logs
    run_dir = Path(server.settings.storage_root) / "projects" / project.name / "runs"
    assert (run_dir / f"job-{job['id']}" / "result.txt").read_text() == "done"
    # A plain job starts in its run folder, not where the server was started.
    assert (run_dir / f"job-{job['id']}" / "relative.txt").read_text() == "in its run folder"
    [line] = usage
    assert line["user"] == project.member.username and line["resource"] == "cpu"
    assert line["resource_seconds"] > 0
    engine = create_engine(server.settings.resolved_database_url)
    with engine.connect() as conn:
        revoked = conn.execute(
            select(TokenModel.revoked_at).where(TokenModel.name == f"job-{job['id']}")
        ).all()
    engine.dispose()
    assert revoked and all(r[0] is not None for r in revoked), "the job's token ends with it"
    head = LocalRayHead(Settings(home=server.settings.home, **ray_settings))
    ray_info = httpx.get(
        f"{head.dashboard_url}/api/jobs/{job['submission_id']}", headers=head.auth_headers()
    ).text
    assert "FABRIC_JOB_TOKEN_FILE" in ray_info
    assert secrets.PREFIXES["job"] not in ray_info, "no job token in what Ray shows of the job"


def test_single_limit_refuses_before_anything_is_stored(server: Server) -> None:
    project = create_project(server)
    with server.admin() as admin:
        admin.put(
            f"/api/v1/projects/{project.name}/quotas",
            json={"resource": "gpu", "kind": "single", "limit": 1},
        ).raise_for_status()
    with server.client(project.member.token) as client:
        refused = _submit(client, project.name, entrypoint="python -c pass", resources={"gpu": 2})
        listed = client.get(f"/api/v1/projects/{project.name}/jobs").json()
    assert refused.status_code == 409
    assert "single quota on gpu is 1" in refused.json()["detail"]
    assert listed == []


def test_a_job_no_node_can_hold_is_refused_at_once(server: Server) -> None:
    """`--resource cpu=8` on a 2-core machine passed the quota and sat PENDING for ever."""
    project = create_project(server)
    with server.client(project.member.token) as client:
        refused = _submit(client, project.name, entrypoint="echo hi", resources={"cpu": 8})
        workers = _submit(
            client,
            project.name,
            entrypoint="echo hi",
            resources={"cpu": 1},
            workers=2,
            worker_resources={"gpu": 1},
        )
        listed = client.get(f"/api/v1/projects/{project.name}/jobs").json()
        held = client.get(f"/api/v1/projects/{project.name}/allocations").json()
    assert refused.status_code == 409, refused.text
    assert refused.json()["may_fit_later"] is False
    detail = refused.json()["detail"]
    assert detail.startswith("the job's driver asks for cpu 8, more than any node of the cluster")
    assert "(the largest: cpu 2, memory " in detail and "ask for less" in detail
    assert workers.status_code == 409
    assert workers.json()["detail"].startswith("each of its workers asks for gpu 1")
    assert listed == [] and held == []


def test_concurrent_overflow_queues_then_runs(server: Server) -> None:
    project = create_project(server)
    with server.admin() as admin:
        admin.put(
            f"/api/v1/projects/{project.name}/quotas",
            json={"resource": "cpu", "kind": "concurrent", "limit": 0.5},
        ).raise_for_status()
    with server.client(project.member.token) as client:
        first = _submit(client, project.name, entrypoint=WAIT_FOR_GO, resources={"cpu": 0.5}).json()
        second = _submit(
            client, project.name, entrypoint="python -c \"print('second')\"", resources={"cpu": 0.5}
        ).json()
        assert second["status"] == "QUEUED"
        assert second["queue_position"] == 1
        assert _wait(client, project.name, first["id"], {"RUNNING"})["status"] == "RUNNING"
        still = client.get(f"/api/v1/projects/{project.name}/jobs/{second['id']}").json()
        assert still["status"] == "QUEUED"
        signal_go(server, project.name)
        first = _wait(client, project.name, first["id"], TERMINAL)
        second = _wait(client, project.name, second["id"], TERMINAL)
    assert first["status"] == second["status"] == "SUCCEEDED"
    assert second["started_at"] >= first["ended_at"]


def test_a_job_is_billed_from_its_start_not_while_it_waits_for_the_cluster(
    server: Server, clock
) -> None:
    """A job that the quota admits but the cluster cannot fit yet waits PENDING on it; the
    time it waits is not billed (it used to be: 1.88 cpu-hours for a job that never ran)."""
    project = create_project(server)
    with server.client(project.member.token) as client:
        # Both the fake cluster and the session's Ray head have 2 cpus (tests/conftest.py).
        whole = server.fake.resources["cpu"] if server.fake else 2
        holder = _submit(client, project.name, entrypoint=WAIT_FOR_GO, resources={"cpu": whole})
        holder = _wait(client, project.name, holder.json()["id"], {"RUNNING"})
        waiter = _submit(client, project.name, entrypoint="echo never", resources={"cpu": 1})
        assert waiter.json()["status"] == "PENDING", waiter.text
        clock.advance(600)
        stopped = client.post(f"/api/v1/projects/{project.name}/jobs/{waiter.json()['id']}/stop")
        assert stopped.json()["status"] == "STOPPED"
        signal_go(server, project.name)
        assert _wait(client, project.name, holder["id"], TERMINAL)["status"] == "SUCCEEDED"
        [line] = client.get(f"/api/v1/projects/{project.name}/usage").json()
    # The holder ran through the 600 s the clock moved; the waiter's 600 s count for nothing.
    assert whole * 600 <= line["resource_seconds"] < whole * 600 + 300


WORKERS_SCRIPT = """
import ray
from fabric import runtime

granted = runtime.workers()
ray.init()
each = runtime.ray_resources(granted.resources)
task = ray.remote(lambda: 1).options(num_cpus=each.pop("CPU"), resources=each)
print("workers ran", sum(ray.get([task.remote() for _ in range(granted.count)])))
"""


@RAY_ON_BOTH  # the job's workers are Ray tasks
def test_workers_count_against_the_quota_and_reach_the_job(server: Server) -> None:
    project = create_project(server)
    with server.admin() as admin:
        admin.put(
            f"/api/v1/projects/{project.name}/quotas",
            json={"resource": "cpu", "kind": "concurrent", "limit": 1},
        ).raise_for_status()
    request = {
        "entrypoint": f"python -c {WORKERS_SCRIPT!r}".replace("\\n", "\n"),
        "resources": {"cpu": 0.25},
        "worker_resources": {"cpu": 0.25},
    }
    with server.client(project.member.token) as client:
        too_many = _submit(client, project.name, workers=4, **request)
        stray = _submit(client, project.name, entrypoint="true", worker_resources={"cpu": 1})
        submitted = _submit(client, project.name, workers=3, **request)
        assert submitted.status_code == 201, submitted.text
        job = _wait(client, project.name, submitted.json()["id"], TERMINAL)
        logs = client.get(f"/api/v1/projects/{project.name}/jobs/{job['id']}/logs").text
        [allocation] = client.get(f"/api/v1/projects/{project.name}/allocations").json()
    # The driver alone would fit; with its four workers it never can.
    assert too_many.status_code == 409, too_many.text
    assert stray.status_code == 422
    assert "worker_resources go with workers" in stray.json()["detail"]
    assert job["status"] == "SUCCEEDED", logs
    assert (job["workers"], job["worker_resources"]) == (3, {"cpu": 0.25})
    assert job["requested"] == {"cpu": 1.0}
    assert allocation["resources"] == {"cpu": 1.0}
    assert "workers ran 3" in logs


def test_stop_and_timeout_end_running_jobs(server: Server) -> None:
    project = create_project(server)
    with server.client(project.member.token) as client:
        stopped = _submit(client, project.name, entrypoint=WAIT_FOR_GO, resources={"cpu": 0.2})
        timed = _submit(
            client, project.name, entrypoint=WAIT_FOR_GO, resources={"cpu": 0.2}, timeout_seconds=1
        )
        job_id = stopped.json()["id"]
        _wait(client, project.name, job_id, {"RUNNING"})
        with server.client(project.viewer.token) as viewer:
            refused = viewer.post(f"/api/v1/projects/{project.name}/jobs/{job_id}/stop")
        assert refused.status_code == 403
        result = client.post(f"/api/v1/projects/{project.name}/jobs/{job_id}/stop").json()
        assert result["status"] == "STOPPED"
        assert result["message"] == f"stopped by {project.member.username}"
        timed_out = _wait(client, project.name, timed.json()["id"], TERMINAL)
    assert timed_out["status"] == "STOPPED"
    assert timed_out["message"] == "timed out after 1 s"


def test_failed_job_is_retried_then_fails(server: Server) -> None:
    project = create_project(server)
    with server.client(project.member.token) as client:
        job = _submit(
            client,
            project.name,
            entrypoint="python -c \"raise SystemExit('broken on purpose')\"",
            resources={"cpu": 0.2},
            max_retries=1,
        ).json()
        job = _wait(client, project.name, job["id"], {"FAILED"})
    assert job["attempt"] == 2
    assert "exit code 1" in job["message"] or "failed" in job["message"].lower()


def test_a_failed_jobs_message_ends_with_its_last_lines(server: Server) -> None:
    """Ray appends the log's end to its reason; the message keeps the lines where the error
    is, not the first of 20,000 characters, and says where the whole log is."""
    project = create_project(server)
    script = "import sys; [print('line', i) for i in range(3000)]; sys.exit('the real error')"
    with server.client(project.member.token) as client:
        job = _submit(
            client, project.name, entrypoint=f"python -c {script!r}", resources={"cpu": 0.2}
        ).json()
        job = _wait(client, project.name, job["id"], {"FAILED"})
    first, *rest = job["message"].splitlines()
    assert "exit code 1" in first
    assert f"`fabric job logs {project.name} {job['id']}`" in first
    assert rest[-2:] == ["line 2999", "the real error"]
    assert len(job["message"]) <= 2000


def test_bad_job_requests_say_what_to_fix(server: Server) -> None:
    project = create_project(server)
    with server.client(project.member.token) as client:
        reserved = _submit(
            client, project.name, entrypoint="true", runtime_env={"env_vars": {"FABRIC_X": "1"}}
        )
        unknown = _submit(client, project.name, entrypoint="true", runtime_env={"conda": "x"})
        empty = _submit(client, project.name, entrypoint="  ")
    assert reserved.status_code == unknown.status_code == empty.status_code == 422
    assert "FABRIC_X are set by Fabric" in reserved.json()["detail"]
    assert "may not set conda" in unknown.json()["detail"]
    assert "entrypoint must be a command" in empty.json()["detail"]


def test_a_server_restart_loses_no_running_job(
    tmp_path: Path, ray_settings: dict[str, object]
) -> None:
    url = f"sqlite:///{tmp_path / 'restart.db'}"
    with running_server(tmp_path, url, "sqlite", **ray_settings) as first:
        project = create_project(first)
        with first.client(project.member.token) as client:
            job = _submit(client, project.name, entrypoint=WAIT_FOR_GO, resources={"cpu": 0.2})
            job_id = job.json()["id"]
            _wait(client, project.name, job_id, {"RUNNING"})
    signal_go(first, project.name)  # the job ends while no server runs
    with running_server(tmp_path, url, "sqlite", **ray_settings) as second:
        token = second.admin_token
        with second.client(token) as client:
            done = _wait(client, project.name, job_id, TERMINAL)
    assert done["status"] == "SUCCEEDED"
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(select(UsageModel.resource)).all()
    engine.dispose()
    assert rows == [("cpu",)], "metered exactly once"
