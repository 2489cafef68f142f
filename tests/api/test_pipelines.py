"""Pipelines through the REST API: every bad spec refused with the task and field named and
nothing stored, export and copy, pause, and a failed run run again from its failed task."""

from __future__ import annotations

import shlex
from typing import Any

import pytest
import yaml

from tests.factories import Project, create_project
from tests.jobs import wait_for
from tests.server import Server

SHELL = {"template": "shell", "params": {"command": "true"}, "resources": {"cpu": 0.1}}
GOOD = {"globals": {"n": 1}, "tasks": {"a": SHELL, "b": SHELL | {"after": ["a"]}}}


def pipelines(project: Project) -> str:
    return f"/api/v1/projects/{project.name}/pipelines"


def with_task(**task: Any) -> dict[str, Any]:
    """GOOD with task `c`, as given (on top of SHELL)."""
    return GOOD | {"tasks": GOOD["tasks"] | {"c": SHELL | task}}


BAD = [
    pytest.param(
        GOOD | {"tasks": {"a": SHELL | {"after": ["b"]}, "b": SHELL | {"after": ["a"]}}},
        "after: the tasks form a cycle: ",
        id="cycle",
    ),
    pytest.param(
        with_task(after=["nope"]), "tasks.c.after: no task named nope", id="unknown-after"
    ),
    pytest.param(
        with_task(after=["bb"]),
        "tasks.c.after: no task named bb (did you mean b?)",
        id="misspelt-after",
    ),
    pytest.param(
        with_task(template="no-such-template"),
        "tasks.c.template: template 'no-such-template' not found",
        id="unknown-template",
    ),
    pytest.param(
        with_task(template="lr", params={"max_iter": "many"}),
        "tasks.c.params.max_iter: Input should be a valid integer",
        id="bad-param",
    ),
    pytest.param(
        with_task(params={"command": "true", "colour": "red"}),
        "tasks.c.params.colour: no such parameter",
        id="unknown-param",
    ),
    pytest.param(
        with_task(params={"comand": "true"}),
        "tasks.c.params.comand: no such parameter (did you mean command?)",
        id="misspelt-param",
    ),
    pytest.param(
        with_task(params={"command": "cat {{ tasks.b.outputs.files[0] }}"}),
        "tasks.c.params.command: refers to tasks.b (it is not upstream of this task; list it in "
        "`after`)",
        id="not-upstream",
    ),
    pytest.param(
        with_task(params={"command": "cat {{ tasks.zz.outputs.x }}"}, after=["b"]),
        "tasks.c.params.command: refers to tasks.zz (no such task)",
        id="unknown-task-reference",
    ),
    pytest.param(
        with_task(params={"command": "cat {{ tasks.bb.outputs.x }}"}, after=["b"]),
        "tasks.c.params.command: refers to tasks.bb (no such task; did you mean b?)",
        id="misspelt-task-reference",
    ),
    pytest.param(
        with_task(params={"command": "echo {{ globals.missing }}"}),
        "tasks.c.params.command: refers to globals.missing, which the pipeline lacks",
        id="unknown-global",
    ),
    pytest.param(
        with_task(params={"command": "echo {{ os.system }}"}),
        "tasks.c.params.command: unknown name 'os'",
        id="unknown-name",
    ),
    pytest.param(
        with_task(params={"command": "echo {{ ds "}),
        "tasks.c.params.command: cannot parse",
        id="bad-expression",
    ),
    pytest.param(
        with_task(resources={"cpu": 64}),
        "tasks.c.resources: ",
        id="above-single-quota",
    ),
    pytest.param(with_task(retries=-1), "tasks.c.retries: ", id="negative-retries"),
    pytest.param(
        with_task(template="xgboost", params={"dataset": "d", "target": "y"}, warm=True),
        "tasks.c.warm: a task with workers runs as a Ray Job of its own",
        id="warm-with-workers",
    ),
    pytest.param(
        GOOD | {"tasks": {"data-prep": SHELL}},
        "tasks.data-prep: a task name is letters, digits and '_'",
        id="task-name",
    ),
    pytest.param(
        GOOD | {"schedule": {"cron": "every day"}},
        "schedule.cron: Value error, 'every day' is not a cron expression",
        id="cron",
    ),
    pytest.param(GOOD | {"parallelism": 0}, "parallelism: ", id="parallelism"),
    pytest.param(GOOD | {"colour": "red"}, "colour: Extra inputs are not permitted", id="extra"),
]


@pytest.fixture(scope="module")
def project(server: Server) -> Project:
    made = create_project(server)
    with server.admin() as client:
        client.put(
            f"/api/v1/projects/{made.name}/quotas",
            json={"resource": "cpu", "kind": "single", "limit": 2},
        ).raise_for_status()
    return made


@pytest.mark.parametrize(("spec", "error"), BAD)
def test_a_bad_spec_is_refused_naming_task_and_field_and_changes_nothing(
    server: Server, project: Project, spec: dict[str, Any], error: str
) -> None:
    with server.client(project.member.token) as client:
        client.put(f"{pipelines(project)}/kept", json=GOOD).raise_for_status()
        refused = client.put(f"{pipelines(project)}/kept", json=spec)
        assert refused.status_code == 422, refused.text
        assert error in refused.json()["detail"]
        kept = client.get(f"{pipelines(project)}/kept").json()
    assert kept["spec"]["tasks"] == yaml.safe_load(yaml.safe_dump(GOOD["tasks"]))


def test_apply_counts_versions_exports_yaml_and_copies(server: Server, project: Project) -> None:
    with server.client(project.member.token) as client:
        first = client.put(f"{pipelines(project)}/versioned", json=GOOD)
        again = client.put(f"{pipelines(project)}/versioned", json=GOOD | {"priority": 3})
        exported = client.get(f"{pipelines(project)}/versioned/export")
        copied = client.post(f"{pipelines(project)}/versioned/copy", json={"name": "twin"})
        clash = client.post(f"{pipelines(project)}/versioned/copy", json={"name": "twin"})
        mismatch = client.put(f"{pipelines(project)}/other", json=GOOD | {"name": "versioned"})

    assert (first.status_code, first.json()["version"]) == (201, 1)
    assert (again.status_code, again.json()["version"]) == (200, 2)
    assert exported.headers["content-type"].startswith("application/yaml")
    spec = yaml.safe_load(exported.text)
    assert spec["name"] == "versioned" and spec["priority"] == 3
    assert spec["tasks"]["b"]["after"] == ["a"]
    assert (copied.status_code, copied.json()["spec"]["tasks"]) == (201, spec["tasks"])
    assert clash.status_code == 409
    assert mismatch.status_code == 422
    assert "the spec says 'versioned', the address 'other'" in mismatch.json()["detail"]


def test_pause_hides_the_next_tick_and_resume_shows_it(server: Server, project: Project) -> None:
    scheduled = GOOD | {"schedule": {"cron": "0 3 * * *", "start_date": "2100-01-01T00:00:00Z"}}
    with server.client(project.member.token) as client:
        applied = client.put(f"{pipelines(project)}/nightly", json=scheduled).json()
        paused = client.patch(f"{pipelines(project)}/nightly", json={"paused": True}).json()
        resumed = client.patch(f"{pipelines(project)}/nightly", json={"paused": False}).json()
    assert applied["next_tick"].startswith("2100-01-01T03:00:00")
    assert (paused["paused"], paused["next_tick"]) == (True, None)
    assert resumed["next_tick"] == applied["next_tick"]


def test_a_failed_run_runs_again_from_its_failed_task(server: Server, project: Project) -> None:
    flag = server.settings.storage_root / "projects" / project.name / "fixed"
    spec = {
        "tasks": {
            "first": SHELL,
            "second": SHELL | {"params": {"command": f"test -e {flag}"}, "after": ["first"]},
        }
    }
    runs = f"{pipelines(project)}/mended/runs"
    with server.client(project.member.token) as client:
        client.put(f"{pipelines(project)}/mended", json=spec).raise_for_status()
        created = client.post(runs, json={})
        assert created.status_code == 201
        run_id = created.json()["id"]
        failed = wait_for(lambda: client.get(f"{runs}/{run_id}").json(), {"FAILED", "SUCCEEDED"})
        flag.parent.mkdir(parents=True, exist_ok=True)
        flag.touch()
        again = client.post(f"{runs}/{run_id}/rerun")
        assert again.status_code == 200, again.text
        done = wait_for(lambda: client.get(f"{runs}/{run_id}").json(), {"FAILED", "SUCCEEDED"})
        logs = client.get(done["tasks"][1]["logs"])

    before, after = ({t["task"]: t for t in run["tasks"]} for run in (failed, done))
    assert failed["status"] == "FAILED"
    assert before["second"]["status"] == "FAILED"
    assert before["second"]["message"].startswith(f"job {before['second']['job_id']} FAILED")
    assert done["status"] == "SUCCEEDED"
    assert after["first"]["job_id"] == before["first"]["job_id"], "first is not run again"
    assert after["second"]["job_id"] != before["second"]["job_id"]
    statuses = [step["status"] for step in after["second"]["history"]]
    assert statuses == ["WAITING", "RUNNING", "FAILED", "WAITING", "RUNNING", "SUCCEEDED"]
    assert logs.status_code == 200
    assert after["second"]["outputs"] == {"exit_code": 0, "files": []}


RESULTS = """
from fabric import runtime
d = runtime.run_dir()
(d / "scores.csv").write_text("epoch,loss\\n1,0.9\\n2,0.5\\n")
(d / "plot.png").write_bytes(b"not really a png")
runtime.write_outputs(
    metrics={"loss": 0.5},
    tables={"scores": str(d / "scores.csv"), "elsewhere": "/etc/passwd"},
    images=[str(d / "plot.png")],
    charts={"loss": {"xAxis": {"data": [1, 2]}, "series": [{"type": "line", "data": [0.9, 0.5]}]}},
)
"""


def test_a_run_shows_each_task_s_metrics_tables_images_and_charts(
    server: Server, project: Project
) -> None:
    with server.client(project.member.token) as client:
        client.post(
            f"/api/v1/projects/{project.name}/templates",
            json={"name": "report", "command": shlex.join(["python", "-c", RESULTS])},
        ).raise_for_status()
        spec = {"tasks": {"report": {"template": f"{project.name}/report"}}}
        client.put(f"{pipelines(project)}/reported", json=spec).raise_for_status()
        runs = f"{pipelines(project)}/reported/runs"
        run_id = client.post(runs, json={}).json()["id"]
        run = wait_for(lambda: client.get(f"{runs}/{run_id}").json(), {"SUCCEEDED", "FAILED"})
        assert run["status"] == "SUCCEEDED", run["tasks"][0]["message"]
        results = run["tasks"][0]["results"]
        image = client.get(results["images"][0]["url"])

    assert results["metrics"] == {"loss": 0.5}
    assert set(results["tables"]) == {"scores"}, "only files of the job's own folder are served"
    scores = results["tables"]["scores"]
    assert (scores["columns"], scores["rows"]) == (["epoch", "loss"], [["1", "0.9"], ["2", "0.5"]])
    assert results["images"][0]["name"] == "plot.png"
    assert (image.status_code, image.content) == (200, b"not really a png")
    assert results["charts"]["loss"]["series"][0]["data"] == [0.9, 0.5]


def test_a_project_template_s_required_parameter_may_come_from_an_expression(
    server: Server, project: Project
) -> None:
    schema = {"type": "object", "properties": {"lr": {"type": "number"}}, "required": ["lr"]}
    with server.client(project.member.token) as client:
        client.post(
            f"/api/v1/projects/{project.name}/templates",
            json={"name": "needs-lr", "command": "python -c pass", "parameters": schema},
        ).raise_for_status()
        task = {"template": f"{project.name}/needs-lr"}
        missing = client.put(f"{pipelines(project)}/lr", json={"tasks": {"t": task}})
        later = client.put(
            f"{pipelines(project)}/lr",
            json={
                "globals": {"lr": 0.1},
                "tasks": {"t": task | {"params": {"lr": "{{ globals.lr }}"}}},
            },
        )
    assert missing.status_code == 422
    assert missing.json()["detail"] == "tasks.t.params.lr: 'lr' is a required property"
    assert later.status_code == 201, later.text
