"""Factories that make users and projects through the real API, with unique names."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

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
