"""Endpoints through the API on the session's real Ray Serve: deploy, call through the
server's door, split and mirror traffic, promote and roll back, keys, quota, and what a bad
artifact does.

One project, one sklearn model with two versions and a batching custom model, deployed once
per module: replicas start slowly on two cores, so the tests go on from one another's state
in the order written.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sklearn.linear_model import LogisticRegression

from fabric.backends.local_head import LocalRayHead
from fabric.config import Settings
from fabric.runtime import model_files
from tests.factories import Project, create_project, create_user
from tests.serve_apps import models
from tests.server import Server
from tests.stacks import RAY_ONCE

pytestmark = RAY_ONCE
SMALL = {"cpu": 0.05, "replicas": 1}
ROWS = [{"x": 1.0, "z": 2.0}, {"x": 15.0, "z": 9.0}, {"x": 4.0, "z": 1.5}]


@dataclass
class Scene:
    server: Server
    project: Project
    models_dir: Path

    @property
    def base(self) -> str:
        return f"/api/v1/projects/{self.project.name}"

    def member(self) -> httpx.Client:
        return self.server.client(self.project.member.token)

    def call(self, endpoint: str, token: str | None, body: Any, **headers: str) -> httpx.Response:
        with self.server.client(token, **headers) as client:
            return client.post(f"/serve/{self.project.name}/{endpoint}/predict", json=body)

    def apply(self, endpoint: str, spec: dict[str, Any]) -> httpx.Response:
        with self.member() as client:
            return client.put(f"{self.base}/endpoints/{endpoint}", json=spec)

    def wait(
        self, endpoint: str, check: Callable[[dict[str, Any]], bool], timeout: float = 120
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self.member() as client:
            while True:
                state = client.get(f"{self.base}/endpoints/{endpoint}").json()
                if check(state):
                    return state
                assert time.monotonic() < deadline, state
                time.sleep(0.25)

    def running(self, endpoint: str, revision: int) -> dict[str, Any]:
        return self.wait(endpoint, lambda s: s["revision"] == revision and s["status"] == "RUNNING")


def _sklearn_version(folder: Path, seed: int) -> Path:
    """A classifier whose answers differ from the other version's on ROWS."""
    frame = models.points()
    labels = frame["label"] if seed == 1 else 1 - frame["label"]
    path = folder / f"v{seed}" / "model.joblib"
    path.parent.mkdir(parents=True)
    import joblib

    joblib.dump(LogisticRegression().fit(frame[models.FEATURES], labels), path)
    return path


@pytest.fixture(scope="module")
def scene(server: Server) -> Iterator[Scene]:
    project = create_project(server)
    folder = Path(server.settings.storage_root) / "projects" / project.name / "incoming"
    folder.mkdir(parents=True)
    scene = Scene(server, project, folder.parent / "models")
    with scene.member() as client:
        for seed in (1, 2):
            body = {"source": str(_sklearn_version(folder, seed))}
            response = client.post(f"{scene.base}/models/churn/versions", json=body)
            assert response.status_code == 201, response.text
        counting = {
            "source": str(models.custom(folder)),
            "framework": "custom",
            "entry": "counting:Counting",
        }
        assert client.post(f"{scene.base}/models/count/versions", json=counting).status_code == 201
    yield scene
    with scene.member() as client:
        for endpoint in client.get(f"{scene.base}/endpoints").json():
            client.delete(f"{scene.base}/endpoints/{endpoint['name']}")


def _local(scene: Scene, version: int) -> list[int]:
    model = model_files.load(scene.models_dir / "churn" / str(version) / "model.joblib", "sklearn")
    import pandas as pd

    return [int(p) for p in model.predict(pd.DataFrame(ROWS))]


def test_a_version_is_served_and_answers_as_it_does_locally(scene: Scene) -> None:
    created = scene.apply("churn", {"versions": [{"model": "churn", "version": 1}], **SMALL})
    assert created.status_code == 201, created.text
    assert created.json()["resources"] == {"cpu": 0.05}
    state = scene.running("churn", 1)
    assert state["deployments"]["churn-v1"]["replicas"] == 1
    answer = scene.call("churn", scene.project.member.token, {"instances": ROWS})
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-fabric-model-version"] == "churn@1"
    assert answer.json()["predictions"] == _local(scene, 1)
    one = scene.call("churn", scene.project.viewer.token, {"instance": [15.0, 9.0]})
    assert one.json()["prediction"] == _local(scene, 1)[1]
    bad = scene.call("churn", scene.project.member.token, {"instances": [{"x": 1}]})
    assert bad.status_code == 400 and "z" in bad.json()["detail"]
    summary = scene.wait("churn", lambda s: s["metrics"]["requests"] >= 3)["metrics"]
    assert summary["versions"]["churn@1"]["requests"] == 3
    assert summary["versions"]["churn@1"]["client_errors"] == 1


def test_calls_need_a_member_token_or_a_key_of_the_endpoint(scene: Scene) -> None:
    body = {"instances": ROWS[:1]}
    anonymous = scene.call("churn", None, body)
    assert anonymous.status_code == 401 and "Bearer" in anonymous.json()["detail"]
    outsider = create_user(scene.server, prefix="outsider")
    assert scene.call("churn", outsider.token, body).status_code == 404
    assert scene.call("missing", scene.project.member.token, body).status_code == 404
    with scene.member() as client:
        created = client.post(f"{scene.base}/endpoints/churn/keys", json={"name": "app"})
        assert created.status_code == 201
        key = created.json()
        assert scene.call("churn", key["key"], body).status_code == 200
        # A key opens its endpoint's calls, nothing of the API.
        with scene.server.client(key["key"]) as keyed:
            assert keyed.get(f"{scene.base}/endpoints").status_code == 401
        client.delete(f"{scene.base}/endpoints/churn/keys/{key['id']}").raise_for_status()
        listed = client.get(f"{scene.base}/endpoints/churn/keys").json()
    assert listed[0]["revoked_at"] is not None and "key" not in listed[0]
    revoked = scene.call("churn", key["key"], body)
    assert revoked.status_code == 401 and "revoked" in revoked.json()["detail"]
    assert scene.call("churn", "fabe_" + "x" * 43, body).status_code == 401


def test_weights_split_traffic_and_promote_and_rollback_restore_it(scene: Scene) -> None:
    with scene.member() as client:
        split = client.post(
            f"{scene.base}/endpoints/churn/traffic", json={"weights": {"1": 80, "2": 20}}
        )
    assert split.status_code == 200, split.text
    revision = split.json()["revision"]
    # Both versions now hold replicas: the quota counts them.
    assert split.json()["resources"] == {"cpu": 0.1}
    scene.running("churn", revision)
    calls = 500
    seen = asyncio.run(_versions_of(scene, "churn", calls))
    share = seen["churn@2"] / calls
    # Four standard deviations of a binomial share: a false alarm once in ~15,000 runs.
    assert abs(share - 0.2) < 4 * math.sqrt(0.2 * 0.8 / calls), seen
    assert set(seen) == {"churn@1", "churn@2"}
    with scene.member() as client:
        promoted = client.post(f"{scene.base}/endpoints/churn/promote", json={}).json()
        assert promoted["spec"]["versions"] == [
            {"model": "churn", "version": 2, "alias": None, "weight": 100.0}
        ]
        scene.running("churn", promoted["revision"])
        assert set(asyncio.run(_versions_of(scene, "churn", 40))) == {"churn@2"}
        back = client.post(f"{scene.base}/endpoints/churn/rollback", json={}).json()
        scene.running("churn", back["revision"])
        assert {(v["version"], v["weight"]) for v in back["spec"]["versions"]} == {(1, 80), (2, 20)}
        assert set(asyncio.run(_versions_of(scene, "churn", 60))) == {"churn@1", "churn@2"}
        actions = [
            r["action"] for r in client.get(f"{scene.base}/endpoints/churn/revisions").json()
        ]
    assert actions[:3] == ["rollback", "promote", "traffic"]


async def _versions_of(scene: Scene, endpoint: str, calls: int) -> Counter[str]:
    """Which version answered each of `calls` calls, 16 at a time."""
    headers = {"Authorization": f"Bearer {scene.project.member.token}"}
    url = f"{scene.server.url}/serve/{scene.project.name}/{endpoint}/predict"
    seen: Counter[str] = Counter()
    limit = asyncio.Semaphore(16)
    async with httpx.AsyncClient(headers=headers, timeout=60) as client:

        async def one() -> None:
            async with limit:
                answer = await client.post(url, json={"instances": ROWS[:1]})
                assert answer.status_code == 200, answer.text
                seen[answer.headers["x-fabric-model-version"]] += 1

        await asyncio.gather(*(one() for _ in range(calls)))
    return seen


def test_a_mirror_gets_its_share_and_its_answers_are_discarded(scene: Scene) -> None:
    spec = {
        "versions": [{"model": "churn", "version": 1}],
        "mirror": {"model": "churn", "version": 2, "percent": 50},
        **SMALL,
    }
    revision = scene.apply("churn", spec).json()["revision"]
    scene.running("churn", revision)
    calls = 200
    before = scene.wait("churn", lambda s: True)["metrics"]["mirrored"].get("churn@2", {"ok": 0})
    seen = asyncio.run(_versions_of(scene, "churn", calls))
    assert seen == {"churn@1": calls}
    mirrored = scene.wait(
        "churn",
        lambda s: sum(s["metrics"]["mirrored"].get("churn@2", {}).values()) - before["ok"] >= 60,
    )["metrics"]["mirrored"]["churn@2"]
    copies = mirrored["ok"] - before["ok"]
    assert mirrored["error"] == 0
    assert abs(copies / calls - 0.5) < 4 * math.sqrt(0.25 / calls), mirrored


def test_the_quota_counts_replicas_and_refuses_a_scale_up(scene: Scene, server: Server) -> None:
    with server.admin() as admin:
        admin.put(
            f"{scene.base}/quotas", json={"resource": "cpu", "kind": "concurrent", "limit": 0.3}
        ).raise_for_status()
    try:
        grown = scene.apply(
            "churn", {"versions": [{"model": "churn", "version": 1}], "cpu": 0.05, "replicas": 4}
        )
        assert grown.status_code == 200, grown.text
        refused = scene.apply(
            "churn", {"versions": [{"model": "churn", "version": 1}], "cpu": 0.05, "replicas": 8}
        )
        assert refused.status_code == 409
        assert "cpu" in refused.json()["detail"]
        state = scene.wait("churn", lambda s: True)
        assert state["revision"] == grown.json()["revision"]
        assert state["resources"] == {"cpu": 0.2}
    finally:
        with server.admin() as admin:
            admin.request(
                "DELETE", f"{scene.base}/quotas", params={"resource": "cpu", "kind": "concurrent"}
            )


def test_a_changed_artifact_is_refused_and_a_broken_one_rolled_back(scene: Scene) -> None:
    revision = scene.apply(
        "churn", {"versions": [{"model": "churn", "version": 1}], **SMALL}
    ).json()["revision"]
    scene.running("churn", revision)
    with scene.member() as client:
        broken = models.corrupt(scene.models_dir.parent / "incoming")
        response = client.post(
            f"{scene.base}/models/churn/versions",
            json={"source": str(broken), "framework": "sklearn"},
        )
        assert response.status_code == 201
        bad_version = response.json()["version"]
        damaged = Path(response.json()["uri"])
    original = damaged.read_bytes()
    damaged.write_bytes(original + b"!")
    changed = scene.apply(
        "churn", {"versions": [{"model": "churn", "version": bad_version}], **SMALL}
    )
    assert changed.status_code == 409
    assert "does not match its checksum" in changed.json()["detail"]
    damaged.write_bytes(original)
    # Registered intact but not a model: Serve fails to load it, Fabric goes back.
    failing = scene.apply(
        "churn", {"versions": [{"model": "churn", "version": bad_version}], **SMALL}
    )
    assert failing.status_code == 200, failing.text
    state = scene.wait(
        "churn", lambda s: s["revision"] > failing.json()["revision"] and s["status"] == "RUNNING"
    )
    assert [v["version"] for v in state["spec"]["versions"]] == [1]
    with scene.member() as client:
        latest = client.get(f"{scene.base}/endpoints/churn/revisions").json()[0]
    assert latest["action"] == "auto-rollback"
    assert f"revision {failing.json()['revision']} failed to deploy" in latest["message"]
    answer = scene.call("churn", scene.project.member.token, {"instances": ROWS})
    assert answer.json()["predictions"] == _local(scene, 1)


def test_batching_batches_concurrent_calls(scene: Scene) -> None:
    spec = {
        "versions": [{"model": "count"}],
        "batching": {"max_batch_size": 16, "batch_wait_timeout_s": 0.2},
        "anonymous": True,
        **SMALL,
    }
    created = scene.apply("counter", spec)
    assert created.status_code == 201, created.text
    scene.running("counter", 1)

    async def sizes() -> list[int]:
        url = f"{scene.server.url}/serve/{scene.project.name}/counter/predict"
        async with httpx.AsyncClient(timeout=60) as client:
            answers = await asyncio.gather(
                *(client.post(url, json={"instance": {"x": 1.0}}) for _ in range(16))
            )
        return [a.json()["prediction"] for a in answers]

    # Anonymous: no token at all.
    assert max(asyncio.run(sizes())) > 1


def test_serve_losing_the_apps_gets_them_back(scene: Scene, ray_settings: dict[str, Any]) -> None:
    """As after a Ray restart: the reconciler applies the database's config again."""
    head = LocalRayHead(Settings(home=ray_settings["ray_folder"], **ray_settings))
    url = f"{head.dashboard_url}/api/serve/applications/"
    with httpx.Client(headers=head.auth_headers(), timeout=60) as ray:
        deployed = ray.get(url).json()["applications"]
        others = [
            app["deployed_app_config"]
            for name, app in deployed.items()
            if not name.startswith(f"{scene.project.name}.") and app.get("deployed_app_config")
        ]
        port = ray_settings["ray_serve_port"]
        ray.put(
            url, json={"http_options": {"host": "127.0.0.1", "port": port}, "applications": others}
        ).raise_for_status()
    state = scene.wait("churn", lambda s: s["status"] == "RUNNING", timeout=180)
    answer = scene.call("churn", scene.project.member.token, {"instances": ROWS})
    assert answer.status_code == 200, answer.text
    assert state["revision"] >= 1


def test_metrics_are_for_administrators(scene: Scene, server: Server) -> None:
    with server.admin() as admin:
        text = admin.get("/metrics").text
    assert (
        f'fabric_endpoint_requests_total{{code="200",endpoint="churn",project="{scene.project.name}",version="churn@1"}}'
        in text
    )
    assert "fabric_endpoint_request_seconds_bucket" in text
    with scene.member() as client:
        assert client.get("/metrics").status_code == 403


def test_an_endpoint_holds_its_allocation_and_its_project(scene: Scene) -> None:
    with scene.member() as client:
        held = client.get(f"{scene.base}/endpoints/churn").json()
        allocations = client.get(f"{scene.base}/allocations", params={"state": "active"}).json()
        [mine] = [a for a in allocations if a["purpose"] == "endpoint churn"]
        assert mine["resources"] == held["resources"]
        released = client.post(f"{scene.base}/allocations/{mine['id']}/release")
    assert released.status_code == 409
    assert "held by endpoint 'churn'" in released.json()["detail"]
    with scene.server.client(scene.project.owner.token) as owner:
        deleted = owner.delete(scene.base)
    assert deleted.status_code == 409
    assert "still serves endpoints churn, counter" in deleted.json()["detail"]
