"""`fabric model` and `fabric endpoint` against a real server and Ray Serve."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests import llm
from tests.cli.support import Fabric, ok, one_error_line
from tests.factories import create_project
from tests.serve_apps import models
from tests.server import Server
from tests.stacks import RAY_ONCE, WITHOUT_RAY


@RAY_ONCE
def test_register_alias_deploy_call_split_and_roll_back(server: Server, fabric: Fabric) -> None:
    project = create_project(server)
    token = project.member.token
    incoming = Path(server.settings.storage_root) / "projects" / project.name / "incoming"
    incoming.mkdir(parents=True)
    source = models.sklearn(incoming, models.points())

    for version in (1, 2):
        registered = ok(
            fabric(
                "model",
                "register",
                project.name,
                "churn",
                "incoming/model.joblib",
                "--tag",
                "team=growth",
                token=token,
            )
        )
        assert registered.stdout.strip() == f"model churn version {version} (sklearn) registered"
    assert (
        ok(
            fabric("model", "alias", project.name, "churn", "production", "1", token=token)
        ).stdout.strip()
        == "churn@production is version 1"
    )
    listed = ok(fabric("model", "list", project.name, token=token)).stdout
    assert "churn" in listed and "production=1" in listed
    shown = json.loads(
        ok(
            fabric("model", "show", project.name, "churn", "production", "--json", token=token)
        ).stdout
    )
    assert (shown["version"], shown["tags"], shown["lineage"]["source"]) == (
        1,
        {"team": "growth"},
        str(source),
    )

    deployed = ok(
        fabric(
            "endpoint",
            "deploy",
            project.name,
            "churn",
            "--model",
            "churn@production",
            "--cpu",
            "0.05",
            token=token,
        )
    )
    assert "endpoint churn revision 1: RUNNING at" in deployed.stdout
    answer = json.loads(
        ok(
            fabric(
                "endpoint",
                "call",
                project.name,
                "churn",
                "-d",
                '{"instances": [{"x": 18, "z": 9}]}',
                token=token,
            )
        ).stdout
    )
    assert (answer["model"], answer["version"], len(answer["predictions"])) == ("churn", 1, 1)

    split = ok(fabric("endpoint", "traffic", project.name, "churn", "1=80", "2=20", token=token))
    assert "revision 2: RUNNING" in split.stdout
    forced = json.loads(
        ok(
            fabric(
                "endpoint",
                "call",
                project.name,
                "churn",
                "-d",
                '{"instances": [[1, 2]]}',
                "--version",
                "churn@2",
                token=token,
            )
        ).stdout
    )
    assert forced["version"] == 2
    ok(fabric("endpoint", "rollback", project.name, "churn", token=token))
    revisions = ok(fabric("endpoint", "revisions", project.name, "churn", token=token)).stdout
    assert [line.split()[:2] for line in revisions.splitlines()[2:]] == [
        ["3", "rollback"],
        ["2", "traffic"],
        ["1", "create"],
    ]
    shown = ok(fabric("endpoint", "show", project.name, "churn", token=token)).stdout
    assert "churn@1=100" in shown and "RUNNING" in shown

    key = ok(fabric("endpoint", "key", "create", project.name, "churn", "app", token=token))
    assert key.stdout.startswith("fabe_") and "shown once" in key.stderr

    assert one_error_line(
        fabric("endpoint", "deploy", project.name, "churn", "--model", "nope", token=token)
    ) == ("error: versions[0]: model 'nope' not found in project " + repr(project.name))
    assert one_error_line(
        fabric("endpoint", "call", project.name, "churn", "-d", "{oops", token=token)
    ).startswith("error: --data is not JSON")
    assert one_error_line(fabric("endpoint", "deploy", project.name, "churn", token=token)) == (
        "error: name what to serve: --model MODEL[@VERSION] or --file SPEC.yaml"
    )
    ok(fabric("endpoint", "delete", project.name, "churn", token=token))
    assert (
        ok(fabric("endpoint", "list", project.name, token=token)).stdout.strip() == "no endpoints"
    )


@WITHOUT_RAY
def test_register_an_llm_and_a_lora_adapter_of_it(
    server: Server, fabric: Fabric, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A tiny Llama and a peft adapter of it, both real (made in the LLM environment)."""
    project = create_project(server)
    token = project.member.token
    user_dir = Path(server.settings.storage_root) / "users" / project.member.username
    shutil.copytree(llm.tiny_model(tmp_path_factory), user_dir / "qwen")
    shutil.copytree(llm.adapter(tmp_path_factory), user_dir / "style")

    registered = fabric(
        "model",
        "register",
        project.name,
        "qwen",
        str(user_dir / "qwen"),
        "--framework",
        "llm",
        token=token,
    )
    assert ok(registered).stdout.strip() == "model qwen version 1 (llm) registered"
    no_base = fabric(
        "model", "register", project.name, "style", str(user_dir / "style"), token=token
    )
    assert one_error_line(no_base) == (
        "error: base: a lora adapter names the llm version it adapts: give its base as "
        "MODEL@VERSION"
    )
    adapter = fabric(
        "model",
        "register",
        project.name,
        "style",
        str(user_dir / "style"),
        "--base",
        "qwen@1",
        token=token,
    )
    assert ok(adapter).stdout.strip() == "model style version 1 (lora, adapting qwen@1) registered"
    shown = ok(fabric("model", "show", project.name, "style", "1", token=token)).stdout
    assert "qwen@1" in shown and "lora" in shown
    not_llm = fabric(
        "model",
        "register",
        project.name,
        "style",
        str(user_dir / "style"),
        "--base",
        "style@1",
        token=token,
    )
    assert "is lora, not llm" in one_error_line(not_llm)
