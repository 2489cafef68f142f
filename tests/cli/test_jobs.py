"""`fabric job` and `fabric usage` against a real server and the session's real Ray head."""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from fabric.sdk import Client
from tests.cli.support import Fabric, ok, one_error_line
from tests.factories import create_project, unique
from tests.jobs import WAIT_FOR_GO
from tests.sdk.test_client import wait_for_job
from tests.server import Server
from tests.stacks import RAY_ON_BOTH

TINY = ("--resource", "cpu=0.2")


def test_submit_follows_the_output_until_the_job_succeeds(server: Server, fabric: Fabric) -> None:
    project = create_project(server)
    token = project.member.token
    result = fabric(
        "job", "submit", project.name, *TINY, "--", "python", "-c", "print('from the cli')",
        token=token,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "from the cli" in result.stdout
    submitted, *_, final = result.stdout.splitlines()
    job_id = int(submitted.split()[1])
    assert submitted.startswith(f"job {job_id} submitted (")
    assert final == f"job {job_id} SUCCEEDED"

    listed = json.loads(ok(fabric("job", "list", project.name, "--json", token=token)).stdout)
    assert [(j["id"], j["entrypoint"]) for j in listed] == [
        (job_id, "python -c 'print('\"'\"'from the cli'\"'\"')'")
    ]
    table = ok(fabric("job", "list", project.name, "--status", "succeeded", token=token)).stdout
    assert project.member.username in table
    for follow in ((), ("-f",)):
        logs = ok(fabric("job", "logs", project.name, str(job_id), *follow, token=token))
        assert "from the cli" in logs.stdout
    shown = ok(fabric("job", "show", project.name, str(job_id), token=token)).stdout
    assert "cpu=0.2" in shown


def test_outputs_shows_what_a_job_wrote(server: Server, fabric: Fabric) -> None:
    project = create_project(server)
    token = project.member.token
    script = "from fabric import runtime; runtime.report_metrics(step=3, loss=0.5); " + (
        "runtime.write_outputs(model_uri='model.joblib')"
    )
    submitted = fabric(
        "job", "submit", project.name, *TINY, "--json", "--", "python", "-c", script, token=token
    )
    job_id = str(json.loads(ok(submitted).stdout)["id"])
    shown = ok(fabric("job", "outputs", project.name, job_id, token=token)).stdout
    as_json = json.loads(
        ok(fabric("job", "outputs", project.name, job_id, "--json", token=token)).stdout
    )
    assert "model.joblib" in shown
    assert "last of 1 metric reports: step=3, loss=0.5" in shown
    assert as_json["outputs"] == {"model_uri": "model.joblib"}
    assert [m["loss"] for m in as_json["metrics"]] == [0.5]


def test_usage_after_a_job_shows_cpu_for_its_user(server: Server, fabric: Fabric) -> None:
    project = create_project(server)
    token = project.member.token
    submitted = fabric("job", "submit", project.name, *TINY, "--json", "--", "true", token=token)
    assert json.loads(ok(submitted).stdout)["status"] == "SUCCEEDED"
    # The job's end is stored a moment before its use is metered: poll, with a deadline.
    deadline = time.monotonic() + 30
    usage = ("usage", project.name, "--json")
    while not (lines := json.loads(ok(fabric(*usage, token=token)).stdout)):
        assert time.monotonic() < deadline, "the job's use was never metered"
        time.sleep(0.2)
    [line] = lines
    assert (line["user"], line["resource"]) == (project.member.username, "cpu")
    assert line["resource_seconds"] > 0
    table = ok(fabric("usage", project.name, "--group-by", "resource", token=token)).stdout
    assert table.split("\n")[0].split() == ["USER", "RESOURCE", "RESOURCE-HOURS", "TOKENS", "COST"]
    assert "cpu" in table


def test_a_failing_command_exits_1_and_says_failed(server: Server, fabric: Fabric) -> None:
    project = create_project(server)
    result = fabric(
        "job", "submit", project.name, *TINY, "--", "python", "-c", "raise SystemExit('broken')",
        token=project.member.token,
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "broken" in result.stdout
    final = result.stdout.splitlines()[-1]
    assert final.startswith("job ") and " FAILED: " in final and "exit code 1" in final
    assert f"fabric job logs {project.name}" in final
    assert "Traceback" not in result.stderr


def test_no_wait_json_returns_the_job_at_once(server: Server, fabric: Fabric) -> None:
    project = create_project(server)
    result = ok(
        fabric(
            "job", "submit", project.name, *TINY, "--no-wait", "--json", "--name", "quick",
            "--env", "WHO=cli", "--", "python", "-c", "import os; print(os.environ['WHO'])",
            token=project.member.token,
        )
    )  # fmt: skip
    job = json.loads(result.stdout)
    assert isinstance(job["id"], int)
    assert (job["name"], job["resources"]) == ("quick", {"cpu": 0.2})
    with Client(server.url, project.member.token) as client:
        done = wait_for_job(client, project.name, job["id"], {"SUCCEEDED", "FAILED", "STOPPED"})
        assert done.status == "SUCCEEDED"
        assert "cli" in client.job_logs(project.name, job["id"])


@pytest.fixture
def waiting_job(server: Server) -> Iterator[tuple[str, Client, int]]:
    """A running job that waits for a `go` file nobody creates; stopped afterwards."""
    project = create_project(server)
    with Client(server.url, project.member.token) as client:
        job = client.submit_job(project.name, WAIT_FOR_GO, resources={"cpu": 0.2})
        try:
            wait_for_job(client, project.name, job.id, {"RUNNING"})
            yield project.name, client, job.id
        finally:
            client.stop_job(project.name, job.id)


def test_stop_ends_a_running_job(fabric: Fabric, waiting_job: tuple[str, Client, int]) -> None:
    project, client, job_id = waiting_job
    result = ok(fabric("job", "stop", project, str(job_id), token=client.token))
    assert result.stdout.startswith(f"job {job_id} STOPPED: stopped by ")
    assert client.get_job(project, job_id).status == "STOPPED"


def test_ctrl_c_while_a_submitted_job_runs_leaves_it_running(
    server: Server, fabric: Fabric, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = create_project(server)
    follow = Client.follow_job_logs

    def interrupted(self: Client, project: str, job_id: int) -> Iterator[str]:
        for chunk in follow(self, project, job_id):
            yield chunk
            if "waiting" in chunk:
                raise KeyboardInterrupt  # as if the user pressed Ctrl-C now

    monkeypatch.setattr(Client, "follow_job_logs", interrupted)
    result = fabric(
        "job", "submit", project.name, *TINY, "--", *shlex.split(WAIT_FOR_GO),
        token=project.member.token,
    )  # fmt: skip
    job_id = int(result.stdout.split()[1])
    with Client(server.url, project.member.token) as client:
        try:
            assert result.exit_code == 130, result.output
            assert "waiting" in result.stdout
            assert result.stderr.endswith(
                "stopped following; the job goes on "
                f"(fabric job stop {project.name} {job_id} to stop it)\n"
            )
            assert client.get_job(project.name, job_id).status == "RUNNING"
        finally:
            client.stop_job(project.name, job_id)


def test_an_unknown_project_is_one_error_line(server: Server, fabric: Fabric) -> None:
    name = unique("missing")
    for args in (
        ("job", "submit", name, *TINY, "--", "true"),
        ("job", "list", name),
        ("usage", name),
    ):
        result = fabric(*args, token=server.admin_token)
        assert one_error_line(result) == f"error: project {name!r} not found"


def test_submit_uploads_the_working_dir_with_a_progress_bar(
    server: Server, fabric: Fabric, tmp_path: Path
) -> None:
    project = create_project(server)
    code = tmp_path / "code"
    (code / "data").mkdir(parents=True)
    (code / "main.py").write_text("import os; print(sorted(os.listdir('.')))")
    (code / "data" / "big.bin").write_bytes(b"x" * 1000)
    (code / "notes.log").write_text("left out by .gitignore")
    (code / ".gitignore").write_text("*.log\n")
    submit = (
        "job", "submit", project.name, *TINY, "--working-dir", str(code),
        "--exclude", "data/", "--", "python", "main.py",
    )  # fmt: skip
    first = ok(fabric(*submit, token=project.member.token))
    assert "['.gitignore', 'main.py']" in first.stdout
    assert "uploading code" in first.stderr and "bytes" in first.stderr, first.stderr
    again = ok(fabric(*submit, token=project.member.token))
    assert "unchanged since its last upload" in again.stderr
    assert "uploading" not in again.stderr
    missing = fabric(
        "job", "submit", project.name, "--working-dir", str(tmp_path / "nope"), "--", "true",
        token=project.member.token,
    )  # fmt: skip
    assert missing.exit_code == 2 and "does not exist" in missing.stderr


@RAY_ON_BOTH  # the link opens Ray's own dashboard
def test_dashboard_prints_a_link_that_logs_the_browser_in(server: Server, fabric: Fabric) -> None:
    project = create_project(server)
    result = ok(fabric("dashboard", project.name, "--no-browser", token=project.viewer.token))
    link = result.stdout.strip()
    assert link.startswith(f"{server.url}/ray/{project.name}/dashboard/?ticket=")
    with httpx.Client(follow_redirects=True) as browser:
        assert "Ray Dashboard" in browser.get(link).text
