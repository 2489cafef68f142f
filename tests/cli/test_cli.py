"""The `fabric` CLI, run in-process against a real server, with its own FABRIC_HOME."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fabric.cli.main import app
from tests.cli.support import Fabric, ok, one_error_line
from tests.factories import PASSWORD, create_user, login, unique
from tests.server import Server

ROOT = Path(__file__).parent.parent.parent
# The Python types Typer prints beside parameters unless told not to.
TYPE_TAG = re.compile(r"<(?:bool|str|int|float|dir|file|path|datetime|list\[\w+\])>")


def test_login_saves_a_session_only_its_owner_can_read(server: Server, fabric: Fabric) -> None:
    user = create_user(server)
    ok(fabric.login(user.username, PASSWORD))
    saved_file = fabric.home / "credentials.json"
    assert stat.S_IMODE(saved_file.stat().st_mode) == 0o600
    saved = json.loads(saved_file.read_text())
    assert saved["url"] == server.url
    assert PASSWORD not in saved_file.read_text()
    assert json.loads(ok(fabric("whoami", "--json")).stdout)["username"] == user.username

    ok(fabric("logout"))
    assert not saved_file.exists()
    with server.client(saved["token"]) as client:
        assert client.get("/api/v1/users/me").status_code == 401
    assert "not logged in" in fabric("whoami").stderr


def test_login_prompts_without_echoing_the_password(server: Server, fabric: Fabric) -> None:
    user = create_user(server)
    result = ok(fabric("login", "--url", server.url, input=f"{user.username}\n{PASSWORD}\n"))
    assert PASSWORD not in result.output
    assert f"as {user.username}" in result.stdout


def test_a_saved_login_is_not_sent_to_another_server(server: Server, fabric: Fabric) -> None:
    user = create_user(server)
    ok(fabric.login(user.username, PASSWORD))
    other = fabric("project", "list", env={"FABRIC_URL": "http://127.0.0.1:9"})
    assert "you are logged in to " + server.url in one_error_line(other)


def test_without_a_login_commands_say_how_to_log_in(fabric: Fabric) -> None:
    assert one_error_line(fabric("project", "list")) == "error: not logged in: run `fabric login`"


def test_project_create_then_list(server: Server, fabric: Fabric) -> None:
    user = create_user(server)
    name = unique("proj")
    created = ok(fabric("project", "create", name, "--description", "vision", token=user.token))
    assert f"created project {name!r}" in created.stdout

    listed = json.loads(ok(fabric("project", "list", "--json", token=user.token)).stdout)
    assert [(p["name"], p["role"], p["description"]) for p in listed] == [(name, "owner", "vision")]
    assert name in ok(fabric("project", "list", token=user.token)).stdout


def test_quota_set_then_show_with_use(server: Server, fabric: Fabric) -> None:
    admin, member = server.admin_token, create_user(server)
    name = unique("proj")
    ok(fabric("project", "create", name, token=admin))
    ok(fabric("project", "member", "add", name, member.username, token=admin))
    ok(fabric("quota", "set", name, "gpu", "2", "--kind", "concurrent", token=admin))
    ok(
        fabric(
            "quota",
            "set",
            name,
            "gpu",
            "1",
            "--kind",
            "single",
            "--user",
            member.username,
            token=admin,
        )
    )

    shown = json.loads(ok(fabric("quota", "show", name, "--json", token=member.token)).stdout)
    assert [(q["kind"], q["limit"], q["user"], q["used"]) for q in shown] == [
        ("concurrent", 2, None, 0),
        ("single", 1, member.username, 0),
    ]

    admitted = ok(fabric("allocation", "create", name, "--resource", "gpu=1", token=member.token))
    assert admitted.stdout.startswith("allocation ")
    refused = fabric("allocation", "create", name, "--resource", "gpu=2", token=member.token)
    assert "single quota on gpu is 1 per request; 2 requested" in one_error_line(refused)

    table = ok(fabric("quota", "show", name, token=member.token)).stdout
    concurrent = next(line for line in table.splitlines() if "concurrent" in line)
    assert concurrent.split()[-3:] == ["2", "1", "50%"]


def test_a_refusal_is_one_error_line(server: Server, fabric: Fabric) -> None:
    name = unique("missing")
    result = fabric("project", "show", name, token=server.admin_token)
    assert one_error_line(result) == f"error: project {name!r} not found"


def test_error_messages_with_brackets_print_literally(server: Server, fabric: Fabric) -> None:
    result = fabric("project", "create", "bad[name]", token=server.admin_token)
    assert one_error_line(result).startswith("error: invalid project name 'bad[name]'")


def test_usage_mistakes_are_one_error_line(server: Server, fabric: Fabric) -> None:
    missing = fabric("project", "create", token=server.admin_token)
    assert one_error_line(missing, code=2).startswith("error: Missing argument")
    malformed = fabric("pool", "create", "p", "--resource", "gpu", token=server.admin_token)
    assert one_error_line(malformed) == "error: --resource expects KEY=VALUE, got 'gpu'"


def test_the_exit_codes_the_docs_state_are_the_cli_s(tmp_path: Path) -> None:
    stated = "exits 1, or 2 when the command line itself is wrong"
    for page in (ROOT / "README.md", ROOT / "docs" / "control-plane.md"):
        assert stated in " ".join(page.read_text().split()), page.name
    env = {"FABRIC_HOME": str(tmp_path), "FABRIC_URL": None, "FABRIC_TOKEN": None}
    refused = CliRunner().invoke(app, ["whoami"], env=env)
    missing = CliRunner().invoke(app, ["project", "create"], env=env)
    unknown = CliRunner().invoke(app, ["projekt", "list"], env=env)
    assert one_error_line(refused) == "error: not logged in: run `fabric login`"
    assert one_error_line(missing, code=2).startswith("error: Missing argument 'name'.")
    assert one_error_line(unknown, code=2).startswith("error: No such command 'projekt'.")


@pytest.mark.parametrize(
    "words",
    [[], ["job"], ["job", "submit"], ["job", "list"], ["endpoint", "deploy"], ["user", "create"]],
    ids=" ".join,
)
def test_help_shows_no_type_tags(words: list[str]) -> None:
    shown = CliRunner().invoke(app, [*words, "--help"])
    assert shown.exit_code == 0, shown.output
    assert "--help" in shown.stdout
    assert TYPE_TAG.findall(shown.stdout) == []


def test_help_still_shows_the_values_an_option_takes() -> None:
    shown = CliRunner().invoke(app, ["quota", "set", "--help"]).stdout
    assert "<single|concurrent|total>" in shown and "<hour|day|week|month>" in shown
    # An option that takes a value says so by its name, so it does not read as a flag.
    assert re.search(r"--user\s+USER\s", shown), shown
    assert re.search(r"--help\s+Show", shown), "a flag shows nothing beside it"


def test_token_secret_is_printed_once_and_never_listed(server: Server, fabric: Fabric) -> None:
    user = create_user(server)
    created = ok(fabric("token", "create", "ci", "--days", "7", token=user.token))
    secret = created.stdout.strip()
    assert secret.startswith("fabp_")
    assert created.output.count(secret) == 1
    assert "shown only this once" in created.stderr

    listed = ok(fabric("token", "list", "--json", token=user.token))
    tokens = json.loads(listed.stdout)
    assert [t["name"] for t in tokens] == ["ci"]
    assert secret not in listed.output
    assert secret not in ok(fabric("token", "list", token=user.token)).output

    assert json.loads(ok(fabric("whoami", "--json", token=secret)).stdout)["username"] == (
        user.username
    )
    ok(fabric("token", "revoke", str(tokens[0]["id"]), token=user.token))
    assert "token revoked" in one_error_line(fabric("whoami", token=secret))


def test_admin_sets_up_a_project_for_a_new_user(server: Server, fabric: Fabric) -> None:
    admin = server.admin_token
    username, name, pool = unique("user"), unique("proj"), unique("pool")
    created = ok(fabric("user", "create", username, token=admin, input=f"{PASSWORD}\n{PASSWORD}\n"))
    assert PASSWORD not in created.output
    assert login(server, username, PASSWORD)

    ok(fabric("pool", "create", pool, "--resource", "gpu=8", "--selector", "acc=a100", token=admin))
    ok(fabric("project", "create", name, token=admin))
    ok(fabric("project", "member", "add", name, username, "--role", "viewer", token=admin))
    ok(fabric("pool", "grant", pool, name, token=admin))

    members = json.loads(
        ok(fabric("project", "member", "list", name, "--json", token=admin)).stdout
    )
    assert {m["username"]: m["role"] for m in members}[username] == "viewer"
    pools = json.loads(ok(fabric("pool", "list", "--project", name, "--json", token=admin)).stdout)
    assert [(p["name"], p["resources"], p["node_selector"]) for p in pools] == [
        (pool, {"gpu": 8}, {"acc": "a100"})
    ]

    trail = json.loads(ok(fabric("audit", "--project", name, "--json", token=admin)).stdout)
    assert {"project.create", "member.set", "pool.grant"} <= {e["action"] for e in trail}
    # A time without an offset is sent as local time, which the server needs.
    since = ok(
        fabric("audit", "--since", "2000-01-01", "--action", "pool.create", "--json", token=admin)
    )
    assert pool in [e["object_name"] for e in json.loads(since.stdout)]


def test_db_upgrade_brings_a_new_database_to_head(tmp_path: Path) -> None:
    env = {"FABRIC_HOME": str(tmp_path), "FABRIC_DATABASE_URL": None}
    before = CliRunner().invoke(app, ["db", "current"], env=env)
    assert "current:  none (empty database)" in before.stdout
    upgraded = CliRunner().invoke(app, ["db", "upgrade"], env=env)
    assert upgraded.exit_code == 0, upgraded.output
    after = CliRunner().invoke(app, ["db", "current"], env=env).stdout.splitlines()
    current, head = (line.split()[-1] for line in after[1:])
    assert current == head != "none"


def test_project_delete_asks_first(server: Server, fabric: Fabric) -> None:
    user = create_user(server)
    name = unique("proj")
    ok(fabric("project", "create", name, token=user.token))
    kept = fabric("project", "delete", name, token=user.token, input="n\n")
    assert kept.exit_code == 1
    assert ok(fabric("project", "show", name, token=user.token))
    ok(fabric("project", "delete", name, "--yes", token=user.token))
    assert "not found" in one_error_line(fabric("project", "show", name, token=user.token))
