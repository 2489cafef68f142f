"""The pipeline scheduler on a real database and Ray head: outputs flow through a diamond,
retries, timeouts, cancel, limits observed from timestamps, backfill in order, and a server
that dies mid-run."""

from __future__ import annotations

import itertools
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from fastapi import Body, FastAPI
from fastapi.responses import JSONResponse

from fabric.background.reconciler import Reconciler
from fabric.db.models import PipelineRunModel
from fabric.services.pipelines import alerts as pipeline_alerts
from fabric.services.pipelines import pipelines
from fabric.states import JobStatus
from tests.server import serving
from tests.services.world import Owner, ServerDied, World


def shell(command: str, *, collect: list[str] | None = None, **task: Any) -> dict[str, Any]:
    """A task running a bash command; `collect` names files it makes that become outputs."""
    params = {"command": command} | ({"collect": collect} if collect else {})
    return {"template": "shell", "params": params, "resources": {"cpu": 0.1}} | task


def apply(world: World, owner: Owner, **spec: Any) -> str:
    name = f"p-{uuid.uuid4().hex[:8]}"
    with world.sessions() as session:
        pipelines.apply(session, world.settings, owner.actor, owner.project, {"name": name} | spec)
    return name


def trigger(world: World, owner: Owner, name: str) -> int:
    with world.sessions() as session:
        return pipelines.trigger(session, owner.actor, owner.project, name).id


def read(world: World, run_id: int) -> PipelineRunModel:
    with world.sessions() as session:
        run = session.get(PipelineRunModel, run_id)
        assert run is not None
        assert run.tasks is not None  # loaded before the session closes
        return run


def run_until(
    world: World, reconciler: Reconciler, run_id: int, done: set[str], timeout: float = 180
) -> PipelineRunModel:
    deadline = time.monotonic() + timeout
    while True:
        assert reconciler.reconcile_once()
        run = read(world, run_id)
        if run.status in done:
            return run
        assert time.monotonic() < deadline, [(t.task, t.status, t.message) for t in run.tasks]
        time.sleep(0.1)


def task_jobs(world: World, run: PipelineRunModel) -> dict[str, int]:
    return {task.task: task.job_id for task in run.tasks if task.job_id is not None}


def run_until_job(
    world: World, reconciler: Reconciler, run_id: int, task: str, statuses: set[str]
) -> None:
    """Run passes until the task's job is in one of `statuses`."""
    deadline = time.monotonic() + 120
    while True:
        assert reconciler.reconcile_once()
        job_id = task_jobs(world, read(world, run_id)).get(task)
        if job_id is not None and world.job(job_id).status in statuses:
            return
        assert time.monotonic() < deadline, f"{task} never reached {statuses}"
        time.sleep(0.1)


def test_a_diamond_passes_outputs_down_and_runs_each_task_once(world: World) -> None:
    owner = world.project(cpu=1)
    uid = uuid.uuid4().hex[:8]

    def file_of(task: str) -> str:
        return f"$(cat {{{{ tasks.{task}.outputs.files[0] }}}})"

    def writes(task: str, expression: str, after: list[str]) -> dict[str, Any]:
        out = f"{task}_{uid}.txt"
        return shell(f"echo $(( {expression} )) > {out}", collect=[out], after=after)

    name = apply(
        world,
        owner,
        globals={"start": 21},
        tasks={
            "a": writes("a", "{{ globals.start }}", []),
            "b": writes("b", f"{file_of('a')} * 2", ["a"]),
            "c": writes("c", f"{file_of('a')} + 1", ["a"]),
            "d": writes("d", f"{file_of('b')} + {file_of('c')}", ["b", "c"]),
        },
    )
    run = run_until(world, world.reconciler(), trigger(world, owner, name), {"SUCCEEDED", "FAILED"})

    assert run.status == "SUCCEEDED", [(t.task, t.status, t.message) for t in run.tasks]
    tasks = {task.task: task for task in run.tasks}
    with open(tasks["d"].outputs["files"][0]) as result:  # type: ignore[index]
        assert result.read().strip() == str(21 * 2 + 21 + 1)
    assert "cat /" in tasks["b"].params["command"], "the reference became a's file"
    assert not Path(f"a_{uid}.txt").exists(), "a task's files stay in its own folder"
    assert len(set(task_jobs(world, run).values())) == 4
    assert len(world.backend.submitted) == 4, "each task ran exactly once"
    # Dependants start only after what they wait for ended.
    assert tasks["b"].started_at >= tasks["a"].ended_at  # type: ignore[operator]
    assert tasks["d"].started_at >= max(tasks["b"].ended_at, tasks["c"].ended_at)  # type: ignore[operator,type-var]
    assert [step["status"] for step in tasks["d"].history] == ["WAITING", "RUNNING", "SUCCEEDED"]


def test_a_failed_task_retries_a_slow_one_times_out_and_dependants_do_not_run(
    world: World,
) -> None:
    owner = world.project(cpu=1)
    flag = f"flag_{uuid.uuid4().hex[:8]}"
    name = apply(
        world,
        owner,
        tasks={
            "flaky": shell(f"test -e {flag} || {{ touch {flag}; exit 1; }}", retries=1),
            "slow": shell("sleep 60", timeout_seconds=1),
            "late": shell("true", after=["slow"]),
        },
    )
    reconciler = world.reconciler(job_retry_backoff_seconds=0)
    run = run_until(world, reconciler, trigger(world, owner, name), {"SUCCEEDED", "FAILED"})

    tasks = {task.task: task for task in run.tasks}
    assert run.status == "FAILED"
    assert run.message == "failed: slow, late"
    assert tasks["flaky"].status == "SUCCEEDED"
    assert world.job(tasks["flaky"].job_id or 0).attempt == 2, "succeeded on its retry"
    assert tasks["slow"].status == "FAILED"
    assert "timed out after 1 s" in tasks["slow"].message
    assert (tasks["late"].status, tasks["late"].message) == (
        "UPSTREAM_FAILED",
        "upstream failed: slow",
    )
    assert tasks["late"].job_id is None, "never started"


def test_cancel_stops_the_running_job_and_ends_every_task(world: World) -> None:
    owner = world.project(cpu=1)
    name = apply(
        world, owner, tasks={"wait": shell("sleep 120"), "next": shell("true", after=["wait"])}
    )
    reconciler = world.reconciler()
    run_id = trigger(world, owner, name)
    run_until_job(world, reconciler, run_id, "wait", {JobStatus.RUNNING})

    with world.sessions() as session:
        asked = pipelines.cancel(session, owner.actor, owner.project, name, run_id)
    assert asked.status == "CANCELLING"
    run = run_until(world, reconciler, run_id, {"CANCELLED"})

    tasks = {task.task: task for task in run.tasks}
    assert run.message == f"cancelled by {owner.actor.name}"
    assert [tasks["wait"].status, tasks["next"].status] == ["CANCELLED", "CANCELLED"]
    assert world.job(tasks["wait"].job_id or 0).status == JobStatus.STOPPED
    assert tasks["next"].job_id is None


def test_parallelism_and_max_active_runs_are_honoured(world: World) -> None:
    owner = world.project(cpu=2)
    name = apply(
        world,
        owner,
        parallelism=1,
        max_active_runs=1,
        tasks={"x": shell("sleep 1"), "y": shell("sleep 1")},
    )
    first, second = trigger(world, owner, name), trigger(world, owner, name)
    reconciler = world.reconciler()
    run_until(world, reconciler, first, {"SUCCEEDED"})
    assert read(world, second).status in ("QUEUED", "RUNNING")
    runs = [read(world, first), run_until(world, reconciler, second, {"SUCCEEDED"})]

    assert runs[1].started_at >= runs[0].ended_at, "one run at a time"  # type: ignore[operator]
    for run in runs:
        x, y = sorted(run.tasks, key=lambda task: task.started_at)  # type: ignore[arg-type,return-value]
        assert y.started_at >= x.ended_at, "one task at a time"  # type: ignore[operator]


def test_a_backfill_with_depends_on_past_runs_its_ticks_in_order(world: World) -> None:
    owner = world.project(cpu=2)
    name = apply(
        world,
        owner,
        max_active_runs=3,
        depends_on_past=True,
        schedule={"cron": "0 0 * * *", "start_date": "2030-01-01T00:00:00Z"},
        tasks={"day": shell("echo {{ ds }}")},
    )
    with world.sessions() as session:
        made = pipelines.backfill(
            session,
            owner.actor,
            owner.project,
            name,
            datetime(2026, 1, 1, tzinfo=UTC),
            datetime(2026, 1, 5, tzinfo=UTC),
        )
        ids = [run.id for run in made]
    assert len(ids) == 5
    reconciler = world.reconciler()
    run_until(world, reconciler, ids[-1], {"SUCCEEDED"}, timeout=300)
    runs = [read(world, run_id) for run_id in ids]

    assert [run.logical_date.day for run in runs] == [1, 2, 3, 4, 5]
    for before, after in itertools.pairwise(runs):
        assert after.started_at >= before.ended_at  # type: ignore[operator]
    day = runs[2].tasks[0]
    assert day.params == {"command": "echo 2026-01-03"}


def test_a_server_killed_mid_run_leaves_no_task_run_twice(world: World) -> None:
    owner = world.project(cpu=1)
    name = apply(
        world,
        owner,
        tasks={
            "first": shell("true"),
            "second": shell("true", after=["first"]),
            "third": shell("true", after=["second"]),
        },
    )
    run_id = trigger(world, owner, name)
    dying = world.reconciler()
    run_until_job(world, dying, run_id, "first", {JobStatus.PENDING, JobStatus.RUNNING})
    # The server dies in the middle of handing `second` to Ray, after its job was recorded.
    world.backend.die_in_next_submit = True
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            assert dying.reconcile_once()
            time.sleep(0.1)
    except ServerDied:
        pass
    assert world.backend.die_in_next_submit is False, "it died in a submit"

    # The dead server's lease runs out, and so does the claim it held on `second`'s job (the
    # grace after which a job admitted but not handed to Ray is handed again).
    lease, grace = (
        world.settings.reconciler_lease.total_seconds(),
        world.settings.job_submit_grace_seconds,
    )
    world.clock.advance(max(lease, grace) + 60)
    run = run_until(world, world.reconciler(), run_id, {"SUCCEEDED", "FAILED"})

    assert run.status == "SUCCEEDED", [(t.task, t.status, t.message) for t in run.tasks]
    assert len(set(task_jobs(world, run).values())) == 3
    assert len(world.backend.submitted) == 3, "each task's job went to Ray once"


def test_a_webhook_is_retried_until_it_is_taken_and_never_changes_the_run(world: World) -> None:
    received: list[dict[str, Any]] = []
    app = FastAPI()

    @app.post("/hook")
    def hook(payload: dict[str, Any] = Body()) -> JSONResponse:
        received.append(payload)
        # The receiver fails at first: the call is tried again after a delay.
        return JSONResponse({}, status_code=503 if len(received) == 1 else 200)

    owner = world.project(cpu=1)
    with serving(app) as url:
        name = apply(
            world,
            owner,
            webhook={"url": f"{url}/hook?token=s3cret", "on": ["failure"]},
            tasks={"broken": shell("exit 3")},
        )
        run_id = trigger(world, owner, name)
        run = run_until(world, world.reconciler(), run_id, {"FAILED"})
        with world.sessions() as session, httpx.Client(timeout=5) as http:
            first = pipeline_alerts.deliver_due(session, world.settings, world.clock, http)
            again = pipeline_alerts.deliver_due(session, world.settings, world.clock, http)
            world.clock.advance(pipeline_alerts.retry_delay(1))
            later = pipeline_alerts.deliver_due(session, world.settings, world.clock, http)

    assert (first, again, later) == (1, 0, 1), "not again before its delay"
    assert len(received) == 2
    assert received[1]["event"] == "failure"
    assert received[1]["status"] == "FAILED" and received[1]["tasks"] == {"broken": "FAILED"}
    assert received[1]["run_id"] == run_id
    done = read(world, run_id)
    assert (done.alert_status, done.alert_attempts) == ("sent", 2)
    assert (done.status, done.message) == (run.status, run.message)
    assert "s3cret" not in done.alert_message


def runs_of(world: World, owner: Owner, name: str) -> list[PipelineRunModel]:
    with world.sessions() as session:
        return pipelines.list_runs(session, owner.actor, owner.project, name)


def test_a_schedule_runs_each_tick_or_only_the_newest_without_catchup(world: World) -> None:
    owner = world.project(cpu=1)
    now = world.clock.now()
    hour = now.replace(minute=0, second=0, microsecond=0)
    # Three ticks have come: two hours ago, an hour ago, and this hour.
    start = (hour - timedelta(hours=3, minutes=-1)).isoformat()
    # Its task is skipped: the runs end at once, and the test watches the schedule only.
    tasks = {"noop": shell("true", skip=True)}
    every_tick = apply(
        world,
        owner,
        max_active_runs=5,
        schedule={"cron": "0 * * * *", "start_date": start, "catchup": True},
        tasks=tasks,
    )
    newest = apply(world, owner, schedule={"cron": "0 * * * *", "start_date": start}, tasks=tasks)
    reconciler = world.reconciler()
    assert reconciler.reconcile_once()
    assert reconciler.reconcile_once()

    caught_up = runs_of(world, owner, every_tick)
    ticks = sorted(run.logical_date for run in caught_up)
    assert ticks == [hour - timedelta(hours=2), hour - timedelta(hours=1), hour]
    assert [run.trigger for run in caught_up] == ["schedule"] * len(ticks)
    assert [run.logical_date for run in runs_of(world, owner, newest)] == [ticks[-1]]

    world.clock.advance(3600)
    assert reconciler.reconcile_once()
    assert len(runs_of(world, owner, every_tick)) == len(ticks) + 1
    assert len(runs_of(world, owner, newest)) == 2
    assert {run.status for run in runs_of(world, owner, newest)} == {"SUCCEEDED"}


def test_expired_runs_lose_their_records_and_their_jobs_folders(world: World) -> None:
    owner = world.project(cpu=1)
    name = apply(world, owner, expired_limit=2, tasks={"step": shell("true")})
    reconciler = world.reconciler()
    first = read(world, run_until(world, reconciler, trigger(world, owner, name), {"SUCCEEDED"}).id)
    folder = world.settings.storage_root / "projects" / owner.project / "runs"
    first_job = task_jobs(world, first)["step"]
    assert (folder / f"job-{first_job}").is_dir()
    for _ in range(2):
        run_until(world, reconciler, trigger(world, owner, name), {"SUCCEEDED"})

    kept = runs_of(world, owner, name)
    assert [run.number for run in kept] == [3, 2]
    assert not (folder / f"job-{first_job}").exists()
    assert world.job(first_job).status == JobStatus.SUCCEEDED, "the job's own record stays"


def test_a_run_past_its_timeout_stops_its_jobs_and_owes_a_timeout_alert(world: World) -> None:
    owner = world.project(cpu=1)
    name = apply(
        world,
        owner,
        timeout_seconds=30,
        webhook={"url": "http://127.0.0.1:9/hook", "on": ["timeout"]},
        tasks={"slow": shell("sleep 120"), "next": shell("true", after=["slow"])},
    )
    reconciler = world.reconciler()
    run_id = trigger(world, owner, name)
    run_until_job(world, reconciler, run_id, "slow", {JobStatus.RUNNING})
    world.clock.advance(31)
    run = run_until(world, reconciler, run_id, {"FAILED"})

    tasks = {task.task: task for task in run.tasks}
    assert run.message == "timed out after 30 s"
    assert [tasks["slow"].status, tasks["next"].status] == ["CANCELLED", "CANCELLED"]
    assert tasks["slow"].message == "its run timed out"
    assert world.job(tasks["slow"].job_id or 0).status == JobStatus.STOPPED
    assert (run.alert_event, run.alert_status) == ("timeout", "pending")


def test_ready_tasks_start_in_pipeline_priority_order(world: World) -> None:
    # Room for one task at a time: the second waits in the project's queue.
    owner = world.project(cpu=0.1)
    low = apply(world, owner, priority=0, tasks={"work": shell("true")})
    high = apply(world, owner, priority=5, tasks={"work": shell("true")})
    low_run, high_run = trigger(world, owner, low), trigger(world, owner, high)
    reconciler = world.reconciler()
    assert reconciler.reconcile_once()

    low_job = task_jobs(world, read(world, low_run))["work"]
    high_job = task_jobs(world, read(world, high_run))["work"]
    assert high_job < low_job, "the higher priority's task went first, though triggered later"
    assert world.job(low_job).status == JobStatus.QUEUED
    run_until(world, reconciler, low_run, {"SUCCEEDED"})
    assert read(world, high_run).status == "SUCCEEDED"
