"""`fabric pipeline` with a spec built by the SDK's `Pipeline`, against a real server and Ray."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from fabric.sdk import Pipeline
from tests.cli.support import Fabric, ok, one_error_line
from tests.factories import create_project
from tests.server import Server


def test_build_apply_run_follow_and_export(server: Server, fabric: Fabric, tmp_path: Path) -> None:
    project = create_project(server)
    token = project.member.token
    with Pipeline("hello", globals={"who": "world"}) as p:
        greet = p.task(
            "shell",
            params={"command": "echo hello {{ globals.who }}"},
            resources={"cpu": 0.1},
        )
        p.task(
            "shell",
            params={"command": f"test {greet.output('exit_code')} = 0"},
            resources={"cpu": 0.1},
            after=greet,
        )
    assert list(p.spec()["tasks"]) == ["shell", "shell_2"]
    assert p.spec()["tasks"]["shell_2"]["after"] == ["shell"]
    file = tmp_path / "hello.yaml"
    file.write_text(p.to_yaml())

    applied = ok(fabric("pipeline", "apply", project.name, "-f", str(file), token=token))
    assert applied.stdout.strip() == "pipeline hello version 1 applied"
    followed = fabric(
        "pipeline", "run", project.name, "hello", "--follow", "-g", "who=cli", token=token
    )
    assert followed.exit_code == 0, followed.stderr
    assert "hello run 1" in followed.stderr and "SUCCEEDED" in followed.stderr
    runs = json.loads(
        ok(fabric("pipeline", "runs", project.name, "hello", "--json", token=token)).stdout
    )
    assert [run["status"] for run in runs] == ["SUCCEEDED"]
    assert runs[0]["variables"] == {"who": "cli"}
    assert runs[0]["tasks"][0]["params"] == {"command": "echo hello cli"}
    assert runs[0]["tasks"][1]["params"] == {"command": "test 0 = 0"}

    alone = fabric(
        "pipeline", "run", project.name, "hello", "--only", "shell_2", "--follow", "--json",
        token=token,
    )  # fmt: skip
    assert alone.exit_code == 0, alone.stderr
    tasks = {task["task"]: task for task in json.loads(alone.stdout)["tasks"]}
    assert tasks["shell"]["status"] == "SKIPPED" and tasks["shell"]["job_id"] is None
    assert tasks["shell"]["outputs"] == runs[0]["tasks"][0]["outputs"], "lent by run 1"
    assert (tasks["shell_2"]["status"], tasks["shell_2"]["params"]) == (
        "SUCCEEDED",
        {"command": "test 0 = 0"},
    )

    status = ok(
        fabric("pipeline", "status", project.name, "hello", str(runs[0]["id"]), token=token)
    )
    assert status.stdout.splitlines()[0].startswith("hello run 1")
    assert "no metrics" in status.stdout

    exported = ok(fabric("pipeline", "export", project.name, "hello", token=token)).stdout
    assert yaml.safe_load(exported)["tasks"] == p.spec()["tasks"]
    listed = ok(fabric("pipeline", "list", project.name, token=token)).stdout
    assert listed.splitlines()[0].split()[:3] == ["NAME", "VERSION", "TASKS"]
    assert listed.splitlines()[2].split()[:3] == ["hello", "1", "2"]


def test_bad_files_and_specs_are_one_error_line(
    server: Server, fabric: Fabric, tmp_path: Path
) -> None:
    project = create_project(server)
    token = project.member.token
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: x\ntasks: [\n")
    assert "is not valid YAML" in one_error_line(
        fabric("pipeline", "apply", project.name, "-f", str(broken), token=token)
    )
    missing = one_error_line(
        fabric("pipeline", "apply", project.name, "-f", str(tmp_path / "nope.yaml"), token=token)
    )
    assert "cannot read" in missing
    cyclic = tmp_path / "cyclic.yaml"
    cyclic.write_text(
        yaml.safe_dump(
            {
                "name": "cyclic",
                "tasks": {
                    "a": {"template": "shell", "params": {"command": "true"}, "after": ["b"]},
                    "b": {"template": "shell", "params": {"command": "true"}, "after": ["a"]},
                },
            }
        )
    )
    error = one_error_line(
        fabric("pipeline", "apply", project.name, "-f", str(cyclic), token=token)
    )
    assert "the tasks form a cycle" in error
    assert "not found" in one_error_line(
        fabric("pipeline", "show", project.name, "cyclic", token=token)
    )
