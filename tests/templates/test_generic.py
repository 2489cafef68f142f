"""The generic templates run for real: one's own Ray program with the job's workers, and a
shell command whose exit status and files the job keeps."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fabric.sdk.client import Client
from fabric.sdk.packages import package
from tests.factories import create_project
from tests.jobs import wait_for
from tests.server import Server
from tests.stacks import RAY_ONCE
from tests.templates.runs import TINY, finish, local, submit

# A user's Ray program: it starts one task per granted worker, each with a worker's resources.
TRAIN = """\
import json, os, sys

import ray

from fabric import runtime
from helper import square

ray.init()
granted = runtime.workers()
each = json.loads(os.environ["FABRIC_WORKER_RESOURCES"])
task = ray.remote(square).options(num_cpus=each["CPU"])
squares = ray.get([task.remote(n) for n in range(int(os.environ["FABRIC_NUM_WORKERS"]))])
print("squares", squares, flush=True)
runtime.write_outputs(squares=squares, workers=granted.count, args=sys.argv[1:])
"""

REPORT = "echo 'rows: 3'; mkdir -p report; printf 'a,b\\n1,2\\n' > report/rows.csv; echo x > y.txt"


def _upload(server: Server, token: str, project: str, folder: Path) -> str:
    """The folder as one of the project's packages: a job's working directory, `gcs://...`."""
    zipped = package(folder, folder.parent)
    return Client(server.url, token).upload_package(project, zipped)


@pytest.fixture(scope="module")
def jobs(server: Server, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A ray-script job and two shell jobs, submitted together; name to job and logs, and
    to outputs and run folder for those that succeed."""
    project = create_project(server)
    token = project.member.token
    code = tmp_path_factory.mktemp("code")
    (code / "train.py").write_text(TRAIN)
    (code / "helper.py").write_text("def square(n):\n    return n * n\n")
    working_dir = {"working_dir": _upload(server, token, project.name, code)}

    def start(template: str, params: dict[str, Any], **request: Any) -> str:
        return submit(
            server, token, project.name, template, params, runtime_env=working_dir, **request
        )

    paths = {
        "ray-script": start(
            "ray-script",
            {"script": "train.py", "args": ["--epochs", "3"]},
            workers=2,
            worker_resources=TINY,
        ),
        "shell": start("shell", {"command": REPORT, "collect": ["report/*.csv"]}),
        "shell-fails": start("shell", {"command": f"{REPORT}; exit 3", "collect": ["*.txt"]}),
    }
    done: dict[str, Any] = {}
    with server.client(token) as client:
        for name, path in paths.items():
            job = wait_for(lambda p=path: client.get(p).json(), {"SUCCEEDED", "FAILED"}, 240)
            done[name] = {"job": job, "logs": client.get(f"{path}/logs").text}
            if job["status"] == "SUCCEEDED":
                done[name]["outputs"], done[name]["run_dir"] = finish(
                    server, token, project.name, path
                )
            else:
                root = Path(server.settings.storage_root)
                done[name]["run_dir"] = (
                    root / "projects" / project.name / "runs" / f"job-{job['id']}"
                )
    return done


@RAY_ONCE
def test_a_ray_script_runs_from_its_working_dir_with_the_granted_workers(
    jobs: dict[str, Any],
) -> None:
    result = jobs["ray-script"]
    assert result["job"]["status"] == "SUCCEEDED", result["logs"]
    outputs = result["outputs"]
    # The program's own outputs sit beside the template's.
    assert outputs == {"squares": [0, 1], "workers": 2, "args": ["--epochs", "3"], "exit_code": 0}
    assert "ray-script: 2 workers granted, each with {'cpu': 0.5}" in result["logs"]
    assert "squares [0, 1]" in result["logs"]


@RAY_ONCE
def test_shell_streams_its_output_and_collects_the_files_asked_for(jobs: dict[str, Any]) -> None:
    result = jobs["shell"]
    assert result["job"]["status"] == "SUCCEEDED", result["logs"]
    copied = result["run_dir"] / "files" / "report" / "rows.csv"
    assert result["outputs"] == {"exit_code": 0, "files": [str(copied)]}
    assert copied.read_text() == "a,b\n1,2\n"
    assert "rows: 3" in result["logs"]


@RAY_ONCE
def test_a_failing_command_fails_the_job_and_keeps_its_status_and_files(
    jobs: dict[str, Any],
) -> None:
    result = jobs["shell-fails"]
    assert result["job"]["status"] == "FAILED"
    assert "shell: the command exited with code 3" in result["logs"]
    outputs = json.loads((result["run_dir"] / "outputs.json").read_text())
    assert outputs == {"exit_code": 3, "files": [str(result["run_dir"] / "files" / "y.txt")]}


def test_shell_exits_with_the_commands_status_outside_fabric(tmp_path: Path) -> None:
    argv = json.dumps(["python", "-c", "import sys; print('out'); sys.exit(4)"])
    result = local("jobs.shell", "--argv", argv, cwd=tmp_path)
    assert result.returncode == 4
    assert "out\n" in result.stdout
    [manifest] = (tmp_path / "fabric-local" / "runs").glob("shell-*/outputs.json")
    assert json.loads(manifest.read_text()) == {"exit_code": 4, "files": []}


def test_a_missing_script_or_two_programs_fail_naming_what_to_give(tmp_path: Path) -> None:
    missing = local("jobs.ray_script", "--script", "train.py", cwd=tmp_path)
    both = local("jobs.shell", "--command", "ls", "--argv", '["ls"]', cwd=tmp_path)
    assert missing.returncode == both.returncode == 1
    assert f"ray-script: no file train.py in the working directory {tmp_path}" in missing.stderr
    assert "shell: parameters: Value error, give either command" in both.stderr
