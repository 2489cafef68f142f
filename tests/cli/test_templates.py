"""`fabric template` and `fabric job submit --template` against a real server and Ray head."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.support import Fabric, ok, one_error_line
from tests.factories import create_project, create_user
from tests.server import Server
from tests.stacks import WITHOUT_RAY


def test_list_and_show(server: Server, fabric: Fabric) -> None:
    token = create_user(server).token
    table = ok(fabric("template", "list", token=token)).stdout
    assert table.split("\n")[0].split() == [
        "NAME",
        "VERSION",
        "GROUP",
        "RESOURCES",
        "WORKERS",
        "DESCRIPTION",
    ]
    assert "random-forest" in table and "data-import" in table
    listed = json.loads(ok(fabric("template", "list", "--json", token=token)).stdout)
    assert {"data-import", "random-forest"} <= {t["name"] for t in listed}

    shown = ok(fabric("template", "show", "random-forest", token=token)).stdout
    lines = {line.split()[0]: line.split() for line in shown.splitlines() if line.strip()}
    assert lines["target"][1:3] == ["string", "(required)"]
    assert lines["n_estimators"][1:3] == ["integer", "100"]
    assert lines["max_depth"][1:4] == ["integer", "|", "null"]
    assert "model_uri" in lines
    error = one_error_line(fabric("template", "show", "nope", token=token))
    assert "template 'nope' not found" in error


def test_submit_a_template_with_params(server: Server, fabric: Fabric, tmp_path: Path) -> None:
    project = create_project(server)
    source = tmp_path / "t.csv"
    source.write_text("a,b\n1,2\n3,4\n")
    result = fabric(
        "job", "submit", project.name, "--template", "data-import", "--resource", "cpu=0.5",
        "--param", f"source={source}", "--param", "name=t", "--json",
        token=project.member.token,
    )  # fmt: skip
    job = json.loads(ok(result).stdout)
    assert job["status"] == "SUCCEEDED", job["message"]
    assert (job["template"], job["params"]["name"]) == ("data-import", "t")
    shown = ok(fabric("job", "show", project.name, str(job["id"]), token=project.member.token))
    assert "data-import" in shown.stdout


def test_submit_refuses_a_bad_param_or_both_kinds(server: Server, fabric: Fabric) -> None:
    project = create_project(server)
    token = project.member.token
    bad = fabric(
        "job", "submit", project.name, "--template", "random-forest",
        "--param", "dataset=d", "--param", "target=y", "--param", "max_depth=0",
        token=token,
    )  # fmt: skip
    assert "params.max_depth: Input should be greater than or equal to 1" in one_error_line(bad)
    both = fabric("job", "submit", project.name, "--template", "x", "--", "true", token=token)
    assert one_error_line(both) == "error: give either -- COMMAND or --template NAME"
    loose = fabric("job", "submit", project.name, "--param", "a=1", "--", "true", token=token)
    assert one_error_line(loose) == "error: --param goes with --template"


@WITHOUT_RAY  # refused before anything runs
def test_a_misspelt_param_is_told_the_closest_names(
    server: Server, fabric: Fabric, tmp_path: Path
) -> None:
    project = create_project(server)
    token = project.member.token
    builtin = fabric(
        "job", "submit", project.name, "--template", "random-forest",
        "--param", "dataset=d", "--param", "target=y", "--param", "max-depth=3", token=token,
    )  # fmt: skip
    assert one_error_line(builtin) == (
        "error: params.max-depth: no such parameter (did you mean max_depth?)"
    )
    spec = tmp_path / "greet.yaml"
    spec.write_text(
        "name: greet\n"
        "command: python greet.py\n"
        "parameters: {type: object, properties: {who: {type: string}}, required: [who]}\n"
    )
    ok(fabric("template", "register", project.name, "-f", str(spec), token=token))
    custom = fabric(
        "job", "submit", project.name, "--template", f"{project.name}/greet",
        "--param", "whom=world", token=token,
    )  # fmt: skip
    assert one_error_line(custom) == "error: params.whom: no such parameter (did you mean who?)"


def test_register_run_and_publish_a_projects_own_template(
    server: Server, fabric: Fabric, tmp_path: Path
) -> None:
    project, other = create_project(server), create_project(server)
    code = tmp_path / "code"
    code.mkdir()
    (code / "greet.py").write_text(
        "import sys\nfrom fabric import runtime\nruntime.write_outputs(said=sys.argv[1:])\n"
    )
    spec = tmp_path / "greet.yaml"
    spec.write_text(
        "name: greet\n"
        "command: python greet.py\n"
        "description: says hello\n"
        "resources: {cpu: 0.25}\n"
        "parameters:\n"
        "  type: object\n"
        "  properties:\n"
        "    who: {type: string, description: whom to greet}\n"
        "  required: [who]\n"
    )
    member, owner = project.member.token, project.owner.token
    registered = fabric(
        "template", "register", project.name, "-f", str(spec), "--working-dir", str(code),
        token=member,
    )  # fmt: skip
    assert ok(registered).stdout.strip() == f"registered {project.name}/greet@1"
    own = ok(fabric("template", "list", "--project", project.name, token=member)).stdout
    assert f"{project.name}/greet" in own and "says hello" in own

    ran = fabric(
        "job", "submit", project.name, "--template", f"{project.name}/greet",
        "--param", "who=world", "--json", token=member,
    )  # fmt: skip
    job = json.loads(ok(ran).stdout)
    assert job["status"] == "SUCCEEDED", job["message"]
    outputs = json.loads(
        ok(fabric("job", "outputs", project.name, str(job["id"]), "--json", token=member)).stdout
    )
    assert outputs["outputs"] == {"said": ["--who", "world"]}

    assert "greet" not in ok(fabric("template", "list", token=other.member.token)).stdout
    published = ok(fabric("template", "publish", project.name, "greet", "1", token=owner))
    assert published.stdout.strip() == f"{project.name}/greet@1 published"
    shown = ok(fabric("template", "show", f"{project.name}/greet", token=other.member.token))
    assert "whom to greet" in shown.stdout and "1 (published)" in shown.stdout
    refused = fabric("template", "publish", project.name, "greet", "1", "--withdraw", token=member)
    assert "this needs the owner role" in one_error_line(refused)
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed")
    error = one_error_line(
        fabric("template", "register", project.name, "-f", str(broken), token=member)
    )
    assert error.startswith(f"error: {broken}: not YAML or JSON")
