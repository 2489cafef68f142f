"""The Serve step of the reconciler, on a server on the fake backend: what it does when Serve
did not take a change as it was made."""

from __future__ import annotations

import pytest

from tests import stacks
from tests.factories import create_project, deploy_unserved_endpoint
from tests.jobs import wait_until
from tests.server import Server

ON_FAKE = pytest.mark.stacks(stacks.SQLITE_FAKE)


@ON_FAKE
def test_a_last_endpoint_deleted_while_serve_is_down_leaves_serve_once_it_is_back(
    server: Server,
) -> None:
    """Its replicas would otherwise hold their CPUs for good: no endpoint is left for the
    reconciler to apply the project's config for."""
    fake = server.fake
    assert fake is not None
    project = create_project(server)
    base = f"/api/v1/projects/{project.name}"
    app = f"{project.name}.churn"
    deploy_unserved_endpoint(server, project)
    with server.client(project.owner.token) as client:
        wait_until(
            lambda: client.get(f"{base}/endpoints/churn").json(),
            lambda e: e["healthy_revision"] == 1,
        )
        assert app in fake.applications
        fake.serve_down = True
        try:
            assert client.delete(f"{base}/endpoints/churn").status_code == 204
            assert app in fake.applications, "Serve did not take the delete"
        finally:
            fake.serve_down = False
    wait_until(lambda: {"apps": list(fake.applications)}, lambda s: app not in s["apps"], 30)


@ON_FAKE
def test_a_change_only_the_door_reads_leaves_serve_running_as_it_was(server: Server) -> None:
    """A rate limit or `anonymous` changed: a new revision, the same Serve application (its
    replicas would restart otherwise: an llm engine's take a minute or more)."""
    fake = server.fake
    assert fake is not None
    project = create_project(server)
    base = f"/api/v1/projects/{project.name}"
    deploy_unserved_endpoint(server, project)
    app = f"{project.name}.churn"
    with server.client(project.owner.token) as client:
        wait_until(
            lambda: client.get(f"{base}/endpoints/churn").json(),
            lambda e: e["healthy_revision"] == 1,
        )
        config = fake.applications[app]["deployed_app_config"]
        spec = client.get(f"{base}/endpoints/churn").json()["spec"]
        door = {**spec, "anonymous": True, "rate_limit": {"requests_per_minute": 5}}
        changed = client.put(f"{base}/endpoints/churn", json=door).json()
        assert (changed["revision"], changed["status"]) == (2, "RUNNING"), changed
        assert fake.applications[app]["deployed_app_config"] == config
        scaled = client.put(f"{base}/endpoints/churn", json={**door, "replicas": 2}).json()
        assert scaled["revision"] == 3
        assert fake.applications[app]["deployed_app_config"]["args"]["revision"] == 3
