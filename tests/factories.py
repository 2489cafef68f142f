"""Factories that make users and projects through the real API, with unique names."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

from tests.server import Server

PASSWORD = "factory-password-91xq"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@dataclass
class User:
    username: str
    token: str


def create_user(server: Server, *, admin: bool = False, prefix: str = "user") -> User:
    username = unique(prefix)
    with server.admin() as client:
        response = client.post(
            "/api/v1/users", json={"username": username, "password": PASSWORD, "is_admin": admin}
        )
        response.raise_for_status()
    return User(username, login(server, username, PASSWORD))


def login(server: Server, username: str, password: str) -> str:
    with server.client() as client:
        response = client.post(
            "/api/v1/auth/login", json={"username": username, "password": password}
        )
        response.raise_for_status()
        return response.json()["access_token"]


@dataclass
class Project:
    name: str
    owner: User
    member: User
    viewer: User


def create_project(server: Server) -> Project:
    """A project with an owner, a member and a viewer."""
    owner, member, viewer = (create_user(server, prefix=p) for p in ("owner", "member", "viewer"))
    name = unique("proj")
    with server.client(owner.token) as client:
        client.post("/api/v1/projects", json={"name": name}).raise_for_status()
        for user, role in ((member, "member"), (viewer, "viewer")):
            client.put(
                f"/api/v1/projects/{name}/members/{user.username}", json={"role": role}
            ).raise_for_status()
    return Project(name, owner, member, viewer)


def deploy_unserved_endpoint(server: Server, project: Project, name: str = "churn") -> None:
    """An endpoint `name` of one model version of the same name, deployed by the project's
    owner, whose artifact is never read: on the fake backend nothing serves it, which is all
    tests of the endpoint's gate and of its Serve config need."""
    incoming = Path(server.settings.storage_root) / "projects" / project.name / "incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    artifact = incoming / f"{name}.joblib"
    artifact.write_bytes(b"not read: nothing serves it")
    base = f"/api/v1/projects/{project.name}"
    with server.client(project.owner.token) as client:
        client.post(
            f"{base}/models/{name}/versions", json={"source": str(artifact)}
        ).raise_for_status()
        client.put(
            f"{base}/endpoints/{name}",
            json={"versions": [{"model": name, "version": 1}], "cpu": 0.05},
        ).raise_for_status()
