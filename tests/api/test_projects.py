"""Projects and members: names, ownership rules, deletion, and what survives bad input."""

from __future__ import annotations

import pytest

from tests.factories import create_project, create_user, unique
from tests.server import Server
from tests.stacks import WITHOUT_RAY

# Projects and members never reach Ray: the fake backend stands in for it.
pytestmark = WITHOUT_RAY


@pytest.mark.parametrize(
    "name", ["Vision", "under_score", "-lead", "trail-", "a" * 41, "", "x.y", "ünïcode"]
)
def test_project_names_must_be_dns_safe(server: Server, name: str) -> None:
    with server.admin() as client:
        response = client.post("/api/v1/projects", json={"name": name})
    assert response.status_code == 422
    assert "Kubernetes namespace" in response.json()["detail"]


def test_creator_owns_the_project_and_names_are_unique(server: Server) -> None:
    user = create_user(server)
    name = unique("mine")
    with server.client(user.token) as client:
        created = client.post("/api/v1/projects", json={"name": name, "description": "d"})
        assert created.json()["role"] == "owner"
        again = client.post("/api/v1/projects", json={"name": name})
        members = client.get(f"/api/v1/projects/{name}/members").json()
    assert again.status_code == 409
    assert [(m["username"], m["role"]) for m in members] == [(user.username, "owner")]


def test_project_list_shows_only_ones_own_projects(server: Server) -> None:
    project, other = create_project(server), create_project(server)
    with server.client(project.viewer.token) as client:
        names = {p["name"]: p["role"] for p in client.get("/api/v1/projects").json()}
    assert names == {project.name: "viewer"}
    with server.admin() as admin:
        everything = {p["name"] for p in admin.get("/api/v1/projects").json()}
    assert {project.name, other.name} <= everything


def test_the_last_owner_cannot_leave(server: Server) -> None:
    project = create_project(server)
    path = f"/api/v1/projects/{project.name}/members/{project.owner.username}"
    with server.client(project.owner.token) as client:
        demote = client.put(path, json={"role": "member"})
        leave = client.delete(path)
        assert demote.status_code == leave.status_code == 409
        assert "last owner" in leave.json()["detail"]
        client.put(
            f"/api/v1/projects/{project.name}/members/{project.member.username}",
            json={"role": "owner"},
        ).raise_for_status()
        assert client.put(path, json={"role": "member"}).status_code == 200
    with server.client(project.owner.token) as client:
        assert client.delete(f"/api/v1/projects/{project.name}").status_code == 403


def test_bad_role_is_rejected_and_nothing_changes(server: Server) -> None:
    project = create_project(server)
    with server.client(project.owner.token) as client:
        bad = client.put(
            f"/api/v1/projects/{project.name}/members/{project.viewer.username}",
            json={"role": "emperor"},
        )
        members = {
            m["username"]: m["role"]
            for m in client.get(f"/api/v1/projects/{project.name}/members").json()
        }
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "role"
    assert members[project.viewer.username] == "viewer"


def test_project_with_active_allocations_cannot_be_deleted(server: Server) -> None:
    project = create_project(server)
    with server.client(project.owner.token) as client:
        allocation = client.post(
            f"/api/v1/projects/{project.name}/allocations", json={"resources": {"cpu": 1}}
        ).json()
        refused = client.delete(f"/api/v1/projects/{project.name}")
        assert refused.status_code == 409
        assert "release them" in refused.json()["detail"]
        client.post(
            f"/api/v1/projects/{project.name}/allocations/{allocation['id']}/release"
        ).raise_for_status()
        assert client.delete(f"/api/v1/projects/{project.name}").status_code == 204
        assert client.get(f"/api/v1/projects/{project.name}").status_code == 404


def test_audit_records_who_did_what_from_where(server: Server) -> None:
    project = create_project(server)
    with server.client(project.owner.token, **{"X-Forwarded-For": "203.0.113.9"}) as client:
        client.patch(f"/api/v1/projects/{project.name}", json={"description": "new"})
        events = client.get(f"/api/v1/projects/{project.name}/audit").json()
    latest = events[0]
    assert latest["action"] == "project.update"
    assert latest["actor"] == project.owner.username
    assert latest["client"] == "203.0.113.9"
    actions = {e["action"] for e in events}
    assert {"project.create", "member.set"} <= actions
    with server.admin() as admin:
        by_user = admin.get(
            "/api/v1/audit", params={"user": project.owner.username, "action": "project."}
        ).json()
    assert {e["action"] for e in by_user} == {"project.create", "project.update"}
