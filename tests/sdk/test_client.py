"""The SDK against a real server: each method reaches its route and returns the route's
response model, and refusals are ApiError."""

from __future__ import annotations

import pytest
from pydantic_core import to_jsonable_python

from fabric.api.schemas.jobs import JobPublic
from fabric.quota.engine import Kind
from fabric.sdk import ApiError, Client
from tests.factories import PASSWORD, create_project, create_user, unique
from tests.jobs import wait_for
from tests.server import Server, free_port

ENDED = {"SUCCEEDED", "FAILED", "STOPPED"}


def wait_for_job(client: Client, project: str, job_id: int, statuses: set[str]) -> JobPublic:
    job = wait_for(lambda: client.get_job(project, job_id).model_dump(), statuses)
    return JobPublic.model_validate(job)


def test_login_gives_a_client_acting_as_that_user(server: Server) -> None:
    user = create_user(server)
    with Client.login(server.url, user.username, PASSWORD) as client:
        assert client.token and client.token.startswith("fabs_")
        assert client.me().username == user.username
        client.logout()
        with pytest.raises(ApiError) as refused:
            client.me()
    assert refused.value.status_code == 401


def test_login_with_a_wrong_password_is_refused(server: Server) -> None:
    user = create_user(server)
    with pytest.raises(ApiError) as refused:
        Client.login(server.url, user.username, "not-the-password-at-all")
    assert refused.value.status_code == 401
    assert refused.value.detail == "wrong username or password"


def test_project_lifecycle(server: Server) -> None:
    owner, other = create_user(server, prefix="owner"), create_user(server, prefix="other")
    name = unique("proj")
    with Client(server.url, owner.token) as client:
        created = client.create_project(name, description="first")
        assert (created.name, created.role) == (name, "owner")
        assert name in [p.name for p in client.list_projects()]

        client.update_project(name, description="second")
        assert client.get_project(name).description == "second"

        assert client.set_member(name, other.username, "viewer").role == "viewer"
        members = {m.username: m.role for m in client.list_members(name)}
        assert members == {owner.username: "owner", other.username: "viewer"}
        client.remove_member(name, other.username)
        assert [m.username for m in client.list_members(name)] == [owner.username]

        client.delete_project(name)
        assert name not in [p.name for p in client.list_projects()]


def test_not_found_carries_the_status_and_the_servers_message(server: Server) -> None:
    name = unique("missing")
    with Client(server.url, server.admin_token) as client, pytest.raises(ApiError) as refused:
        client.get_project(name)
    assert refused.value.status_code == 404
    assert refused.value.detail == f"project {name!r} not found"
    assert str(refused.value) == refused.value.detail


def test_invalid_input_carries_the_status_and_the_servers_message(server: Server) -> None:
    user = create_user(server)
    with Client(server.url, user.token) as client:
        project = client.create_project(unique("proj")).name
        with pytest.raises(ApiError) as bad_name:
            client.create_project("Not A Name")
        with pytest.raises(ApiError) as bad_body:
            client.create_allocation(project, {"gpu": 1}, expected_seconds=-5)
    assert bad_name.value.status_code == 422
    assert bad_name.value.detail.startswith("invalid project name 'Not A Name'")
    assert bad_body.value.status_code == 422
    assert bad_body.value.detail == "expected_seconds: Input should be greater than 0"


def test_api_token_create_use_and_revoke(server: Server) -> None:
    user = create_user(server)
    with Client(server.url, user.token) as client:
        created = client.create_token("ci", days=7)
        secret = created.token
        assert secret.startswith("fabp_")
        listed = client.list_tokens()
        assert [t.id for t in listed] == [created.id]
        assert secret not in repr(listed)

        with Client(server.url, secret) as ci:
            assert ci.me().username == user.username
            client.revoke_token(created.id)
            with pytest.raises(ApiError) as refused:
                ci.me()
        assert refused.value.status_code == 401
        assert "revoked" in refused.value.detail
        assert client.list_tokens()[0].revoked_at is not None


def test_pools_quotas_allocations_and_audit(server: Server) -> None:
    project = create_project(server)
    pool = unique("pool")
    with Client(server.url, server.admin_token) as admin:
        created = admin.create_pool(pool, resources={"gpu": 8}, node_selector={"acc": "a100"})
        assert created.resources == {"gpu": 8.0}
        assert admin.get_pool(pool).node_selector == {"acc": "a100"}
        assert pool in [p.name for p in admin.list_pools()]
        admin.grant_pool(project.name, pool)
        admin.set_quota(project.name, "gpu", "concurrent", 2)
        admin.set_quota(project.name, "gpu", "single", 1, user=project.member.username)

    with Client(server.url, project.member.token) as member:
        assert [p.name for p in member.project_pools(project.name)] == [pool]
        allocation = member.create_allocation(project.name, {"gpu": 1}, pool=pool, purpose="t")
        assert (allocation.pool, allocation.state) == (pool, "active")
        with pytest.raises(ApiError) as refused:
            member.create_allocation(project.name, {"gpu": 2})
        assert refused.value.status_code == 409
        assert "single quota on gpu is 1 per request" in refused.value.detail

        used = {(q.kind, q.user): q.used for q in member.show_quotas(project.name)}
        assert used[(Kind.CONCURRENT, None)] == 1
        assert member.get_allocation(project.name, allocation.id).resources == {"gpu": 1}
        assert member.release_allocation(project.name, allocation.id).state == "released"
        released = member.list_allocations(project.name, state="released")
        assert [a.id for a in released] == [allocation.id]
        assert member.list_allocations(project.name, state="active") == []

    with Client(server.url, project.owner.token) as owner:
        actions = {e.action for e in owner.project_audit(project.name)}
        assert {"pool.grant", "quota.set", "allocation.create", "allocation.release"} <= actions
        owner.remove_quota(project.name, "gpu", "single", user=project.member.username)
        assert [q.kind for q in owner.show_quotas(project.name)] == ["concurrent"]

    with Client(server.url, server.admin_token) as admin:
        events = admin.platform_audit(project=project.name, action="pool.")
        assert [e.object_name for e in events] == [pool]
        admin.revoke_pool(project.name, pool)
        admin.delete_pool(pool)
        assert pool not in [p.name for p in admin.list_pools()]


def test_users_are_managed_by_admins(server: Server) -> None:
    username = unique("user")
    with Client(server.url, server.admin_token) as admin:
        created = admin.create_user(username, PASSWORD, email="u@example.org")
        assert (created.username, created.is_admin) == (username, False)
        assert username in [u.username for u in admin.list_users()]
        assert admin.update_user(username, disabled=True).disabled is True
        assert admin.get_user(username).email == "u@example.org"
        admin.update_user(username, disabled=False, password="a-brand-new-pass-42")
    with Client.login(server.url, username, "a-brand-new-pass-42") as client:
        client.change_password("a-brand-new-pass-42", "another-new-pass-43")
    with Client.login(server.url, username, "another-new-pass-43") as client:
        assert client.me().username == username


def test_health_and_readiness(server: Server) -> None:
    with Client(server.url) as client:
        assert client.health().status == "ok"
        assert client.ready().status == "ready"


def test_each_answer_holds_all_the_route_sent(server: Server) -> None:
    """What the CLI prints with --json is the model's JSON: it must be the route's own."""
    project = create_project(server)
    prefix = f"/api/v1/projects/{project.name}"
    with Client(server.url, project.owner.token) as client:
        answers = [
            (client.me(), "/api/v1/users/me"),
            (client.get_project(project.name), prefix),
            (client.list_members(project.name), f"{prefix}/members"),
            (client.list_templates(), "/api/v1/templates"),
            (client.get_template("random-forest"), "/api/v1/templates/random-forest"),
            (client.ready(), "/readyz"),
        ]
    with server.client(project.owner.token) as raw:
        for answer, path in answers:
            assert to_jsonable_python(answer) == raw.get(path).json(), path


def test_an_unreachable_server_is_an_api_error_naming_the_url() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with Client(url) as client, pytest.raises(ApiError) as refused:
        client.health()
    assert refused.value.status_code == 0
    assert refused.value.detail.startswith(f"cannot reach Fabric at {url}: ")


def test_job_runs_and_its_output_can_be_read_and_followed(server: Server) -> None:
    project = create_project(server)
    with Client(server.url, project.member.token) as client:
        submitted = client.submit_job(
            project.name,
            "python -c \"import os; print('hello', os.environ['WHO'])\"",
            name="hello",
            runtime_env={"env_vars": {"WHO": "sdk"}},
            resources={"cpu": 0.2},
        )
        assert (submitted.name, submitted.resources) == ("hello", {"cpu": 0.2})
        job = wait_for_job(client, project.name, submitted.id, ENDED)
        assert job.status == "SUCCEEDED", client.job_logs(project.name, job.id)
        assert "hello sdk" in client.job_logs(project.name, job.id)
        assert "hello sdk" in "".join(client.follow_job_logs(project.name, job.id))
        assert [j.id for j in client.list_jobs(project.name, status="succeeded")] == [job.id]
        assert client.list_jobs(project.name, user=project.owner.username) == []
        assert client.stop_job(project.name, job.id).status == "SUCCEEDED"
        with pytest.raises(ApiError) as missing:
            "".join(client.follow_job_logs(project.name, job.id + 10_000))
        lines = client.usage(project.name, group_by="resource")
        with server.client(project.member.token) as raw:
            sent = raw.get(f"/api/v1/projects/{project.name}/jobs/{job.id}").json()
        assert client.get_job(project.name, job.id).model_dump(mode="json") == sent
    assert missing.value.status_code == 404
    assert "not found" in missing.value.detail
    assert [(u.user, u.resource) for u in lines] == [(None, "cpu")]


def test_templates_and_a_template_job(server: Server) -> None:
    project = create_project(server)
    with Client(server.url, project.member.token) as client:
        assert "data-import" in {t.name for t in client.list_templates()}
        schema = client.get_template("random-forest").parameters
        assert schema["properties"]["validation_fraction"]["default"] == 0.2
        with pytest.raises(ApiError) as refused:
            client.submit_job(project.name, template="random-forest", params={"dataset": "d"})
        assert refused.value.status_code == 422
        assert "params.target" in refused.value.detail
        job = client.submit_job(
            project.name,
            template="data-import",
            params={"source": "/no/such/file.csv", "name": "x"},
            resources={"cpu": 0.2},
        )
        ended = wait_for_job(client, project.name, job.id, ENDED)
    assert ended.template == "data-import"
    assert ended.entrypoint.startswith("python -m jobs.data_import --source /no/such/file.csv")
    assert ended.status == "FAILED"
