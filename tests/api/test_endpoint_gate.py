"""The endpoint gate forgets who may call an endpoint as soon as that changes on this server,
not when its cache (`FABRIC_ENDPOINT_AUTH_CACHE_SECONDS`) would expire.

On the fake backend: nothing serves the model, so a call the gate admits is answered 503 by
the door ("not serving now"), and one it refuses 401 or 404, which is all these tests need.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from fabric.api.endpoint_gate import EndpointGate, Pass
from tests import stacks
from tests.factories import (
    PASSWORD,
    Project,
    User,
    create_project,
    create_user,
    deploy_unserved_endpoint,
    login,
)
from tests.server import Server

ON_FAKE = pytest.mark.stacks(stacks.SQLITE_FAKE)
ADMITTED = 503


@dataclass
class Scene:
    server: Server
    project: Project

    @property
    def base(self) -> str:
        return f"/api/v1/projects/{self.project.name}"

    def owner(self) -> httpx.Client:
        return self.server.client(self.project.owner.token)

    def call(self, secret: str | None) -> httpx.Response:
        with self.server.client(secret) as client:
            return client.post(f"/serve/{self.project.name}/churn/predict", json={"instance": [1]})

    def admitted(self, secret: str | None) -> float:
        """Make a call the gate admits, and so remembers; when the gate checked it."""
        issued = time.monotonic()
        answer = self.call(secret)
        assert answer.status_code == ADMITTED, answer.text
        return issued

    def soon(self, since: float) -> None:
        """The refusal came before the remembered pass would have run out."""
        assert time.monotonic() - since < self.server.settings.endpoint_auth_cache_seconds

    def member(self) -> User:
        user = create_user(self.server, prefix="caller")
        with self.owner() as client:
            client.put(
                f"{self.base}/members/{user.username}", json={"role": "viewer"}
            ).raise_for_status()
        return user


@pytest.fixture(scope="module")
def scene(server: Server) -> Iterator[Scene]:
    project = create_project(server)
    scene = Scene(server, project)
    deploy_unserved_endpoint(server, project)
    yield scene
    with scene.owner() as client:
        client.delete(f"{scene.base}/endpoints/churn")


@ON_FAKE
def test_a_removed_member_is_refused_at_once(scene: Scene) -> None:
    user = scene.member()
    since = scene.admitted(user.token)
    with scene.owner() as client:
        client.delete(f"{scene.base}/members/{user.username}").raise_for_status()
    assert scene.call(user.token).status_code == 404
    scene.soon(since)


@ON_FAKE
def test_a_revoked_token_is_refused_at_once(scene: Scene) -> None:
    user = scene.member()
    with scene.server.client(user.token) as client:
        created = client.post("/api/v1/tokens", json={"name": "app"})
        created.raise_for_status()
        token = created.json()
        since = scene.admitted(token["token"])
        client.delete(f"/api/v1/tokens/{token['id']}").raise_for_status()
    revoked = scene.call(token["token"])
    assert revoked.status_code == 401 and "revoked" in revoked.json()["detail"]
    scene.soon(since)


@ON_FAKE
def test_a_logged_out_session_is_refused_at_once(scene: Scene) -> None:
    user = scene.member()
    session = login(scene.server, user.username, PASSWORD)
    since = scene.admitted(session)
    with scene.server.client(session) as client:
        client.post("/api/v1/auth/logout").raise_for_status()
    assert scene.call(session).status_code == 401
    scene.soon(since)


@ON_FAKE
def test_a_disabled_users_tokens_are_refused_at_once(scene: Scene) -> None:
    user = scene.member()
    since = scene.admitted(user.token)
    with scene.server.admin() as admin:
        admin.patch(f"/api/v1/users/{user.username}", json={"disabled": True}).raise_for_status()
    assert scene.call(user.token).status_code == 401
    scene.soon(since)


@ON_FAKE
def test_a_revoked_key_is_refused_at_once(scene: Scene) -> None:
    with scene.owner() as client:
        created = client.post(f"{scene.base}/endpoints/churn/keys", json={"name": "app"})
        created.raise_for_status()
        key = created.json()
        since = scene.admitted(key["key"])
        client.delete(f"{scene.base}/endpoints/churn/keys/{key['id']}").raise_for_status()
    revoked = scene.call(key["key"])
    assert revoked.status_code == 401 and "revoked" in revoked.json()["detail"]
    scene.soon(since)


@ON_FAKE
def test_an_endpoint_made_private_again_is_refused_at_once(scene: Scene) -> None:
    spec = {"versions": [{"model": "churn", "version": 1}], "cpu": 0.05}
    with scene.owner() as client:
        client.put(
            f"{scene.base}/endpoints/churn", json={**spec, "anonymous": True}
        ).raise_for_status()
        since = scene.admitted(None)
        client.put(f"{scene.base}/endpoints/churn", json=spec).raise_for_status()
    assert scene.call(None).status_code == 401
    scene.soon(since)


def test_a_pass_checked_while_access_changed_is_not_remembered() -> None:
    """The change committed after the check read the database: the pass may be stale."""
    gate = EndpointGate(None, None, None, ttl_seconds=60)  # type: ignore[arg-type]
    checks = []

    def check(project: str, endpoint: str, secret: str | None) -> Pass:
        checks.append(secret)
        if len(checks) == 1:
            gate.forget()
        return Pass("http://serve", None, 0.0, time.monotonic() + 60)

    gate._check = check  # type: ignore[method-assign]
    for _ in range(3):
        asyncio.run(gate.admit("vision", "churn", "secret"))
    assert len(checks) == 2, "checked again once, then remembered"
