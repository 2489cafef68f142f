"""Admission against quotas over HTTP: races, queue-worthy refusals, metering, pools."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx

from fabric.clock import FrozenClock
from fabric.quota.engine import Period, period_start
from tests.factories import Project, create_project, unique
from tests.server import Server
from tests.stacks import WITHOUT_RAY

# Admission is Fabric's, and these tests start no job: the fake backend stands in for Ray.
pytestmark = WITHOUT_RAY


def _set_quota(server: Server, project: str, **quota: object) -> None:
    with server.admin() as admin:
        admin.put(f"/api/v1/projects/{project}/quotas", json=quota).raise_for_status()


def _within_one_period(clock: FrozenClock, period: Period, seconds: float) -> None:
    """Move the clock past the period's next boundary when the test's span would cross it:
    the clock follows real time, and a run near midnight UTC would meter half the span."""
    now = clock.now()
    later = period_start(period, now + timedelta(seconds=seconds))
    if later != period_start(period, now):
        clock.advance((later - now).total_seconds() + 1)


def _admit(client: httpx.Client, project: str, **body: object) -> httpx.Response:
    return client.post(f"/api/v1/projects/{project}/allocations", json=body)


def test_concurrent_admissions_never_over_admit(server: Server) -> None:
    """100 clients at once against a concurrent gpu quota of 10 in 0.5 steps: exactly 20 fit."""
    project = create_project(server)
    _set_quota(server, project.name, resource="gpu", kind="concurrent", limit=10)
    clients = [server.client(project.member.token) for _ in range(100)]
    try:
        with ThreadPoolExecutor(max_workers=100) as pool:
            responses = list(
                pool.map(lambda c: _admit(c, project.name, resources={"gpu": 0.5}), clients)
            )
    finally:
        for client in clients:
            client.close()
    statuses = [r.status_code for r in responses]
    assert statuses.count(201) == 20
    assert statuses.count(409) == 80
    refused = next(r for r in responses if r.status_code == 409).json()
    assert refused["may_fit_later"] is True
    assert "concurrent quota on gpu is 10" in refused["detail"]
    with server.client(project.member.token) as client:
        active = client.get(
            f"/api/v1/projects/{project.name}/allocations", params={"state": "active"}
        ).json()
        quota = client.get(f"/api/v1/projects/{project.name}/quotas").json()
    assert sum(a["resources"]["gpu"] for a in active) == 10
    assert quota == [
        {
            "resource": "gpu",
            "kind": "concurrent",
            "limit": 10.0,
            "period": None,
            "user": None,
            "used": 10.0,
        }
    ]


def test_released_capacity_admits_again_and_is_metered(server: Server, clock: FrozenClock) -> None:
    _within_one_period(clock, Period.DAY, 600)
    project = create_project(server)
    _set_quota(server, project.name, resource="gpu", kind="concurrent", limit=2)
    _set_quota(server, project.name, resource="gpu", kind="total", limit=3600, period="day")
    with server.client(project.member.token) as client:
        first = _admit(client, project.name, resources={"gpu": 2}).json()
        assert _admit(client, project.name, resources={"gpu": 1}).status_code == 409
        clock.advance(600)
        released = client.post(
            f"/api/v1/projects/{project.name}/allocations/{first['id']}/release"
        ).json()
        assert released["state"] == "released"
        quotas = {
            q["kind"]: q for q in client.get(f"/api/v1/projects/{project.name}/quotas").json()
        }
        # 2 gpus held for 600 s (the clock moved exactly that much) = 1200 gpu-seconds.
        assert 1200 <= quotas["total"]["used"] < 1210
        assert quotas["concurrent"]["used"] == 0
        assert _admit(client, project.name, resources={"gpu": 2}).status_code == 201


def test_concurrent_releases_meter_an_allocation_once(server: Server) -> None:
    project = create_project(server)
    with server.client(project.member.token) as client:
        allocation = _admit(client, project.name, resources={"cpu": 1}).json()
    path = f"/api/v1/projects/{project.name}/allocations/{allocation['id']}/release"
    clients = [server.client(project.member.token) for _ in range(20)]
    try:
        with ThreadPoolExecutor(max_workers=20) as pool:
            statuses = list(pool.map(lambda c: c.post(path).status_code, clients))
    finally:
        for client in clients:
            client.close()
    assert statuses == [200] * 20
    with server.client(project.owner.token) as owner:
        events = owner.get(
            f"/api/v1/projects/{project.name}/audit", params={"action": "allocation.release"}
        ).json()
    assert len(events) == 1


def test_total_quota_refuses_once_spent(server: Server, clock: FrozenClock) -> None:
    _within_one_period(clock, Period.WEEK, 101)
    project = create_project(server)
    _set_quota(server, project.name, resource="cpu", kind="total", limit=100, period="week")
    with server.client(project.member.token) as client:
        allocation = _admit(client, project.name, resources={"cpu": 1}).json()
        clock.advance(101)
        refused = _admit(client, project.name, resources={"cpu": 1})
        assert refused.status_code == 409
        assert "total quota on cpu is 100 resource-seconds per week" in refused.json()["detail"]
        client.post(f"/api/v1/projects/{project.name}/allocations/{allocation['id']}/release")


def test_single_limit_refusal_will_never_fit(server: Server) -> None:
    project = create_project(server)
    with server.client(project.owner.token) as owner:
        owner.put(
            f"/api/v1/projects/{project.name}/quotas",
            json={"resource": "gpu", "kind": "single", "limit": 1, "user": project.member.username},
        ).raise_for_status()
    with server.client(project.member.token) as client:
        refused = _admit(client, project.name, resources={"gpu": 2})
    assert refused.status_code == 409
    assert refused.json()["may_fit_later"] is False
    assert f"user {project.member.username}'s single quota on gpu is 1" in refused.json()["detail"]
    with server.client(project.owner.token) as owner:
        # The member's limit is theirs alone: the owner may ask for more.
        assert _admit(owner, project.name, resources={"gpu": 2}).status_code == 201


def test_user_limits_are_per_user(server: Server) -> None:
    project: Project = create_project(server)
    _set_quota(
        server,
        project.name,
        resource="cpu",
        kind="concurrent",
        limit=1,
        user=project.member.username,
    )
    with server.client(project.member.token) as member, server.client(project.owner.token) as owner:
        assert _admit(member, project.name, resources={"cpu": 1}).status_code == 201
        assert _admit(member, project.name, resources={"cpu": 1}).status_code == 409
        assert _admit(owner, project.name, resources={"cpu": 4}).status_code == 201


def test_pools_must_be_granted(server: Server) -> None:
    project = create_project(server)
    pool = unique("gpu-a100")
    with server.admin() as admin:
        admin.post("/api/v1/pools", json={"name": pool, "resources": {"gpu": 8}}).raise_for_status()
    with server.client(project.member.token) as client:
        refused = _admit(client, project.name, resources={"gpu": 1}, pool=pool)
        assert refused.status_code == 422
        assert f"may not use pool '{pool}' (its pools: none)" in refused.json()["detail"]
        with server.admin() as admin:
            admin.put(f"/api/v1/projects/{project.name}/pools/{pool}").raise_for_status()
        admitted = _admit(client, project.name, resources={"gpu": 1}, pool=pool)
        assert admitted.status_code == 201
        assert admitted.json()["pool"] == pool
        listed = client.get(f"/api/v1/projects/{project.name}/pools").json()
    assert [p["name"] for p in listed] == [pool]
    with server.admin() as admin:
        in_use = admin.delete(f"/api/v1/pools/{pool}")
        assert in_use.status_code == 409
        assert "active allocations" in in_use.json()["detail"]
        assert admin.get(f"/api/v1/pools/{pool}").status_code == 200


def test_bad_requests_say_what_to_fix(server: Server) -> None:
    project = create_project(server)
    with server.client(project.member.token) as client:
        empty = _admit(client, project.name, resources={})
        negative = _admit(client, project.name, resources={"gpu": -1})
        bad_type = _admit(client, project.name, resources={"gpu": "lots"})
    assert empty.status_code == negative.status_code == bad_type.status_code == 422
    assert "at least one resource" in empty.json()["detail"]
    assert "resources.gpu must be greater than zero" in negative.json()["detail"]
    assert bad_type.json()["errors"][0]["field"] == "resources.gpu"
    with server.admin() as admin:
        no_period = admin.put(
            f"/api/v1/projects/{project.name}/quotas",
            json={"resource": "gpu", "kind": "total", "limit": 10},
        )
        bad_kind = admin.put(
            f"/api/v1/projects/{project.name}/quotas",
            json={"resource": "gpu", "kind": "forever", "limit": 10},
        )
        stranger = admin.put(
            f"/api/v1/projects/{project.name}/quotas",
            json={"resource": "gpu", "kind": "single", "limit": 1, "user": "admin"},
        )
    assert "needs a period" in no_period.json()["detail"]
    assert bad_kind.json()["errors"][0]["field"] == "kind"
    assert "is not a member" in stranger.json()["detail"]
