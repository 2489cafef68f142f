"""The authorisation matrix: every route x {anonymous, non-member, viewer, member, owner, admin}.

Non-members get 404 on project routes, exactly like a project that does not exist; members
below the needed role get 403; anonymous callers get 401 everywhere but the public routes.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.factories import Project, User, create_project, create_user, unique
from tests.jobs import wait_for
from tests.serve_apps import models
from tests.server import Server
from tests.stacks import WITHOUT_RAY

# Who may call which route is Fabric's alone: the fake backend stands in for Ray.
pytestmark = WITHOUT_RAY

ROLES = ["anonymous", "nonmember", "viewer", "member", "owner", "admin"]


@dataclass
class Cast:
    server: Server
    project: Project
    outsider: User
    pool: str
    job_id: int | None = None
    pipeline: str | None = None

    def token(self, role: str) -> str | None:
        return {
            "anonymous": None,
            "nonmember": self.outsider.token,
            "viewer": self.project.viewer.token,
            "member": self.project.member.token,
            "owner": self.project.owner.token,
            "admin": self.server.admin_token,
        }[role]

    def owner(self) -> httpx.Client:
        return self.server.client(self.project.owner.token)


Setup = Callable[[Cast], dict[str, Any]]


def _nothing(cast: Cast) -> dict[str, Any]:
    return {}


def _fresh_project(cast: Cast) -> dict[str, Any]:
    """A new project of the same owner, with the same member and viewer, to delete."""
    name = unique("doomed")
    with cast.owner() as client:
        client.post("/api/v1/projects", json={"name": name}).raise_for_status()
        for user, role in ((cast.project.member, "member"), (cast.project.viewer, "viewer")):
            client.put(f"/api/v1/projects/{name}/members/{user.username}", json={"role": role})
    return {"project": name}


def _extra_member(cast: Cast) -> dict[str, Any]:
    user = create_user(cast.server, prefix="extra")
    with cast.owner() as client:
        client.put(
            f"/api/v1/projects/{cast.project.name}/members/{user.username}",
            json={"role": "viewer"},
        ).raise_for_status()
    return {"username": user.username}


def _granted_pool(cast: Cast) -> dict[str, Any]:
    with cast.server.admin() as client:
        client.put(f"/api/v1/projects/{cast.project.name}/pools/{cast.pool}").raise_for_status()
    return {}


def _project_quota(cast: Cast) -> dict[str, Any]:
    with cast.server.admin() as client:
        client.put(
            f"/api/v1/projects/{cast.project.name}/quotas",
            json={"resource": "npu", "kind": "single", "limit": 8},
        ).raise_for_status()
    return {}


def _owners_allocation(cast: Cast) -> dict[str, Any]:
    with cast.owner() as client:
        response = client.post(
            f"/api/v1/projects/{cast.project.name}/allocations", json={"resources": {"cpu": 0.1}}
        )
        response.raise_for_status()
    return {"allocation_id": response.json()["id"]}


def _shared_job(cast: Cast) -> dict[str, Any]:
    """One job of the owner's, made on first use: jobs run on the real Ray head."""
    if cast.job_id is None:
        with cast.owner() as client:
            response = client.post(
                f"/api/v1/projects/{cast.project.name}/jobs",
                json={"entrypoint": "python -c pass", "resources": {"cpu": 0.1}},
            )
            response.raise_for_status()
        cast.job_id = response.json()["id"]
    return {"job_id": cast.job_id, "ref": cast.job_id}


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("main.py", "print('hi')")
    return buffer.getvalue()


ZIP = _zip()


def _package(cast: Cast) -> dict[str, Any]:
    name = f"{unique('pkg')}.zip"
    with cast.owner() as client:
        client.put(
            f"/api/v1/projects/{cast.project.name}/packages/{name}", content=ZIP
        ).raise_for_status()
    return {"name": name}


def _new_package_name(cast: Cast) -> dict[str, Any]:
    return {"name": f"{unique('pkg')}.zip"}


def _template(cast: Cast) -> dict[str, Any]:
    return {"name": "data-import"}


def _own_template(cast: Cast) -> dict[str, Any]:
    """A template of the project's, registered by its owner."""
    with cast.owner() as client:
        registered = client.post(
            f"/api/v1/projects/{cast.project.name}/templates",
            json={"name": "matrix", "command": "python -c pass"},
        )
    registered.raise_for_status()
    return {"name": "matrix", "version": registered.json()["version"]}


def _job_file(cast: Cast) -> dict[str, Any]:
    """A file in the shared job's run folder."""
    job = _shared_job(cast)
    runs = cast.server.settings.storage_root / "projects" / cast.project.name / "runs"
    folder = runs / f"job-{job['job_id']}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "table.csv").write_text("a,b\n1,2\n")
    return {**job, "path": "table.csv"}


# Its one task fails as it starts (1 // 0), so its runs end at once without a job.
BROKEN_PIPELINE = {
    "schedule": {"cron": "0 0 * * *", "start_date": "2100-01-01T00:00:00Z"},
    "tasks": {"broken": {"template": "shell", "params": {"command": "echo {{ 1 // 0 }}"}}},
}


def _new_pipeline(cast: Cast) -> dict[str, Any]:
    name = unique("pipe")
    with cast.owner() as client:
        client.put(
            f"/api/v1/projects/{cast.project.name}/pipelines/{name}", json=BROKEN_PIPELINE
        ).raise_for_status()
    return {"name": name}


def _pipeline(cast: Cast) -> dict[str, Any]:
    """One pipeline of the owner's, made on first use."""
    if cast.pipeline is None:
        cast.pipeline = _new_pipeline(cast)["name"]
    return {"name": cast.pipeline}


def _failed_run(cast: Cast) -> dict[str, Any]:
    """A new run of the shared pipeline, once it has failed."""
    name = _pipeline(cast)["name"]
    runs = f"/api/v1/projects/{cast.project.name}/pipelines/{name}/runs"
    with cast.owner() as client:
        run = client.post(runs, json={}).json()
        wait_for(lambda: client.get(f"{runs}/{run['id']}").json(), {"FAILED"})
    return {"name": name, "run_id": run["id"]}


# Scaled to zero: an endpoint of the matrix starts its router but no model replica.
IDLE_ENDPOINT = {
    "versions": [{"model": "matrix"}],
    "cpu": 0.01,
    "autoscaling": {"min_replicas": 0, "max_replicas": 1},
}


def _model(cast: Cast) -> dict[str, Any]:
    """The owner's model `matrix`, registered on first use from a file in the project."""
    folder = cast.server.settings.storage_root / "projects" / cast.project.name / "incoming"
    source = folder / "model.joblib"
    if not source.exists():
        folder.mkdir(parents=True, exist_ok=True)
        models.sklearn(folder, models.points(20))
        with cast.owner() as client:
            client.post(
                f"/api/v1/projects/{cast.project.name}/models/matrix/versions",
                json={"source": str(source)},
            ).raise_for_status()
    return {"name": "matrix", "which": "1", "alias": "stable"}


def _model_source(cast: Cast) -> dict[str, Any]:
    return {"source": "incoming/model.joblib"}


def _alias(cast: Cast) -> dict[str, Any]:
    values = _model(cast)
    with cast.owner() as client:
        client.put(
            f"/api/v1/projects/{cast.project.name}/models/matrix/aliases/stable",
            json={"version": 1},
        ).raise_for_status()
    return values


def _endpoint(cast: Cast, name: str = "shared") -> dict[str, Any]:
    """The owner's endpoint `name`, made (again) when it is not there."""
    _model(cast)
    path = f"/api/v1/projects/{cast.project.name}/endpoints/{name}"
    with cast.owner() as client:
        if client.get(path).status_code == 404:
            client.put(path, json=IDLE_ENDPOINT).raise_for_status()
    return {"name": name}


def _doomed_endpoint(cast: Cast) -> dict[str, Any]:
    return _endpoint(cast, "doomed")


def _key(cast: Cast) -> dict[str, Any]:
    values = _endpoint(cast)
    with cast.owner() as client:
        key = client.post(
            f"/api/v1/projects/{cast.project.name}/endpoints/shared/keys", json={"name": "k"}
        )
    key.raise_for_status()
    return {**values, "key_id": key.json()["id"]}


def _new_pool(cast: Cast) -> dict[str, Any]:
    name = unique("pool")
    with cast.server.admin() as client:
        client.post("/api/v1/pools", json={"name": name}).raise_for_status()
    return {"pool": name}


def _new_user(cast: Cast) -> dict[str, Any]:
    return {"username": create_user(cast.server, prefix="target").username}


def _body_new_user(cast: Cast) -> dict[str, Any]:
    return {"username": unique("made"), "password": "a-long-enough-password"}


@dataclass
class Route:
    method: str
    path: str
    # Expected status for nonmember, viewer, member, owner, admin (anonymous is always 401).
    expect: tuple[int, int, int, int, int]
    body: dict[str, Any] | Callable[[Cast], dict[str, Any]] | None = None
    setup: Setup = _nothing
    params: dict[str, Any] = field(default_factory=dict)
    # A raw body (a package upload) instead of JSON.
    content: bytes | None = None


P = "/api/v1/projects/{project}"
R = "/ray/{project}"
ROUTES = [
    # Routes of the caller and the platform (nonmember = any signed-in user).
    Route("GET", "/api/v1/users/me", (200, 200, 200, 200, 200)),
    Route("GET", "/api/v1/users", (403, 403, 403, 403, 200)),
    Route("POST", "/api/v1/users", (403, 403, 403, 403, 201), body=_body_new_user),
    Route("GET", "/api/v1/users/{username}", (403, 403, 403, 403, 200), setup=_new_user),
    Route(
        "PATCH",
        "/api/v1/users/{username}",
        (403, 403, 403, 403, 200),
        {"email": "x@y.z"},
        _new_user,
    ),
    Route("GET", "/api/v1/tokens", (200, 200, 200, 200, 200)),
    Route("POST", "/api/v1/tokens", (201, 201, 201, 201, 201), {"name": "ci"}),
    Route("GET", "/api/v1/projects", (200, 200, 200, 200, 200)),
    Route("POST", "/api/v1/projects", (201, 201, 201, 201, 201), lambda c: {"name": unique("n")}),
    Route("GET", "/api/v1/pools", (200, 200, 200, 200, 200)),
    Route("POST", "/api/v1/pools", (403, 403, 403, 403, 201), lambda c: {"name": unique("pl")}),
    Route("GET", "/api/v1/pools/{pool}", (200, 200, 200, 200, 200)),
    Route("DELETE", "/api/v1/pools/{pool}", (403, 403, 403, 403, 204), setup=_new_pool),
    Route("GET", "/api/v1/audit", (403, 403, 403, 403, 200)),
    Route("GET", "/api/v1/templates", (200, 200, 200, 200, 200)),
    Route("GET", "/api/v1/templates/{name}", (200, 200, 200, 200, 200), setup=_template),
    # Project routes.
    Route("GET", P, (404, 200, 200, 200, 200)),
    Route("PATCH", P, (404, 403, 403, 200, 200), {"description": "new"}),
    Route("DELETE", P, (404, 403, 403, 204, 204), setup=_fresh_project),
    Route("GET", P + "/members", (404, 200, 200, 200, 200)),
    Route(
        "PUT", P + "/members/{username}", (404, 403, 403, 200, 200), {"role": "viewer"}, _new_user
    ),
    Route("DELETE", P + "/members/{username}", (404, 403, 403, 204, 204), setup=_extra_member),
    Route("GET", P + "/audit", (404, 403, 403, 200, 200)),
    Route("GET", P + "/pools", (404, 200, 200, 200, 200)),
    Route("PUT", P + "/pools/{pool}", (404, 403, 403, 403, 204)),
    Route("DELETE", P + "/pools/{pool}", (404, 403, 403, 403, 204), setup=_granted_pool),
    Route("GET", P + "/quotas", (404, 200, 200, 200, 200)),
    Route(
        "PUT",
        P + "/quotas",
        (404, 403, 403, 403, 204),
        {"resource": "gpu", "kind": "concurrent", "limit": 4},
    ),
    Route(
        "PUT",
        P + "/quotas",
        (404, 403, 403, 204, 204),
        lambda c: {
            "resource": "gpu",
            "kind": "single",
            "limit": 1,
            "user": c.project.member.username,
        },
    ),
    Route(
        "DELETE",
        P + "/quotas",
        (404, 403, 403, 403, 204),
        setup=_project_quota,
        params={"resource": "npu", "kind": "single"},
    ),
    Route("POST", P + "/allocations", (404, 403, 201, 201, 201), {"resources": {"cpu": 0.1}}),
    Route("GET", P + "/allocations", (404, 200, 200, 200, 200)),
    Route(
        "GET",
        P + "/allocations/{allocation_id}",
        (404, 200, 200, 200, 200),
        setup=_owners_allocation,
    ),
    Route(
        "POST",
        P + "/allocations/{allocation_id}/release",
        (404, 403, 403, 200, 200),
        setup=_owners_allocation,
    ),
    Route(
        "POST",
        P + "/jobs",
        (404, 403, 201, 201, 201),
        {"entrypoint": "python -c pass", "resources": {"cpu": 0.1}},
    ),
    Route("GET", P + "/jobs", (404, 200, 200, 200, 200)),
    Route("GET", P + "/jobs/{job_id}", (404, 200, 200, 200, 200), setup=_shared_job),
    Route("GET", P + "/jobs/{job_id}/logs", (404, 200, 200, 200, 200), setup=_shared_job),
    Route("GET", P + "/jobs/{job_id}/outputs", (404, 200, 200, 200, 200), setup=_shared_job),
    Route("GET", P + "/jobs/{job_id}/files/{path}", (404, 200, 200, 200, 200), setup=_job_file),
    Route("POST", P + "/jobs/{job_id}/stop", (404, 403, 403, 200, 200), setup=_shared_job),
    Route("GET", P + "/usage", (404, 200, 200, 200, 200)),
    Route(
        "PUT",
        P + "/packages/{name}",
        (404, 403, 200, 200, 200),
        setup=_new_package_name,
        content=ZIP,
    ),
    Route("GET", P + "/packages/{name}", (404, 200, 200, 200, 200), setup=_package),
    Route("POST", P + "/dashboard", (404, 201, 201, 201, 201)),
    Route(
        "POST",
        P + "/templates",
        (404, 403, 201, 201, 201),
        {"name": "matrix", "command": "python -c pass"},
    ),
    Route("GET", P + "/templates", (404, 200, 200, 200, 200)),
    Route(
        "PATCH",
        P + "/templates/{name}/versions/{version}",
        (404, 403, 403, 200, 200),
        {"published": False},
        setup=_own_template,
    ),
    Route("GET", P + "/pipelines", (404, 200, 200, 200, 200)),
    Route(
        "PUT",
        P + "/pipelines/{name}",
        (404, 403, 201, 201, 201),
        BROKEN_PIPELINE,
        lambda c: {"name": unique("pipe")},
    ),
    Route("GET", P + "/pipelines/{name}", (404, 200, 200, 200, 200), setup=_pipeline),
    Route("GET", P + "/pipelines/{name}/export", (404, 200, 200, 200, 200), setup=_pipeline),
    Route(
        "PATCH",
        P + "/pipelines/{name}",
        (404, 403, 200, 200, 200),
        {"paused": False},
        setup=_pipeline,
    ),
    Route("DELETE", P + "/pipelines/{name}", (404, 403, 204, 204, 204), setup=_new_pipeline),
    Route(
        "POST",
        P + "/pipelines/{name}/copy",
        (404, 403, 201, 201, 201),
        lambda c: {"name": unique("copy")},
        _pipeline,
    ),
    Route("POST", P + "/pipelines/{name}/runs", (404, 403, 201, 201, 201), {}, _pipeline),
    Route(
        "POST",
        P + "/pipelines/{name}/backfill",
        (404, 403, 201, 201, 201),
        {"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T00:00:00Z"},
        _pipeline,
    ),
    Route("GET", P + "/pipelines/{name}/runs", (404, 200, 200, 200, 200), setup=_pipeline),
    Route(
        "GET", P + "/pipelines/{name}/runs/{run_id}", (404, 200, 200, 200, 200), setup=_failed_run
    ),
    Route(
        "POST",
        P + "/pipelines/{name}/runs/{run_id}/cancel",
        (404, 403, 403, 200, 200),
        setup=_failed_run,
    ),
    Route(
        "POST",
        P + "/pipelines/{name}/runs/{run_id}/rerun",
        (404, 403, 403, 200, 200),
        setup=_failed_run,
    ),
    Route("GET", P + "/models", (404, 200, 200, 200, 200)),
    Route("GET", P + "/models/{name}", (404, 200, 200, 200, 200), setup=_model),
    Route(
        "POST",
        P + "/models/{name}/versions",
        (404, 403, 201, 201, 201),
        _model_source,
        _model,
    ),
    Route("GET", P + "/models/{name}/versions/{which}", (404, 200, 200, 200, 200), setup=_model),
    Route(
        "PUT",
        P + "/models/{name}/aliases/{alias}",
        (404, 403, 200, 200, 200),
        {"version": 1},
        _model,
    ),
    Route("DELETE", P + "/models/{name}/aliases/{alias}", (404, 403, 204, 204, 204), setup=_alias),
    Route("GET", P + "/endpoints", (404, 200, 200, 200, 200)),
    Route(
        "PUT",
        P + "/endpoints/{name}",
        (404, 403, 201, 200, 200),
        IDLE_ENDPOINT,
        lambda c: {**_model(c), "name": "put"},
    ),
    Route("GET", P + "/endpoints/{name}", (404, 200, 200, 200, 200), setup=_endpoint),
    Route("DELETE", P + "/endpoints/{name}", (404, 403, 204, 204, 204), setup=_doomed_endpoint),
    Route(
        "POST",
        P + "/endpoints/{name}/traffic",
        (404, 403, 200, 200, 200),
        {"weights": {"1": 100}},
        _endpoint,
    ),
    Route("POST", P + "/endpoints/{name}/promote", (404, 403, 200, 200, 200), {}, _endpoint),
    Route("POST", P + "/endpoints/{name}/rollback", (404, 403, 200, 200, 200), {}, _endpoint),
    Route("GET", P + "/endpoints/{name}/revisions", (404, 200, 200, 200, 200), setup=_endpoint),
    Route(
        "POST",
        P + "/endpoints/{name}/keys",
        (404, 403, 201, 201, 201),
        {"name": "app"},
        _endpoint,
    ),
    Route("GET", P + "/endpoints/{name}/keys", (404, 200, 200, 200, 200), setup=_endpoint),
    Route("DELETE", P + "/endpoints/{name}/keys/{key_id}", (404, 403, 204, 204, 204), setup=_key),
    # The Ray Jobs door and the dashboard: Ray's API, behind the same rules.
    # Answered to anyone signed in (the same for every name): Ray's client reads a 404 here
    # as "no Jobs API" and would hide the next request's "project 'x' not found".
    Route("GET", R + "/api/version", (200, 200, 200, 200, 200)),
    Route("GET", R + "/api/packages/{protocol}/{name}", (404, 200, 200, 200, 200), setup=_package),
    Route(
        "PUT",
        R + "/api/packages/{protocol}/{name}",
        (404, 403, 200, 200, 200),
        setup=_new_package_name,
        content=ZIP,
    ),
    Route(
        "POST",
        R + "/api/jobs/",
        (404, 403, 200, 200, 200),
        {"entrypoint": "python -c pass", "entrypoint_num_cpus": 0.1},
    ),
    Route("GET", R + "/api/jobs/", (404, 200, 200, 200, 200)),
    Route("GET", R + "/api/jobs/{ref}", (404, 200, 200, 200, 200), setup=_shared_job),
    Route("GET", R + "/api/jobs/{ref}/logs", (404, 200, 200, 200, 200), setup=_shared_job),
    Route("POST", R + "/api/jobs/{ref}/stop", (404, 403, 403, 200, 200), setup=_shared_job),
    Route("DELETE", R + "/api/jobs/{ref}", (404, 409, 409, 409, 409), setup=_shared_job),
    Route("GET", R + "/dashboard/{path}", (404, 200, 200, 200, 200)),
]


@pytest.fixture(scope="module")
def cast(server: Server) -> Iterator[Cast]:
    pool = unique("pool")
    with server.admin() as client:
        client.post("/api/v1/pools", json={"name": pool}).raise_for_status()
    cast = Cast(server, create_project(server), create_user(server, prefix="outsider"), pool)
    yield cast
    # Its endpoints' Serve applications go, so that they hold no memory for later tests.
    endpoints = f"/api/v1/projects/{cast.project.name}/endpoints"
    with server.admin() as client:
        for endpoint in client.get(endpoints).json():
            client.delete(f"{endpoints}/{endpoint['name']}").raise_for_status()


def _case_id(route: Route) -> str:
    return f"{route.method} {route.path}"


@pytest.mark.parametrize("route", ROUTES, ids=[_case_id(r) for r in ROUTES])
def test_route_by_role(cast: Cast, route: Route) -> None:
    results = {}
    for role in ROLES:
        values = {
            "project": cast.project.name,
            "pool": cast.pool,
            "path": "",
            "protocol": "gcs",
            **route.setup(cast),
        }
        body = route.body(cast) if callable(route.body) else route.body
        with cast.server.client(cast.token(role)) as client:
            response = client.request(
                route.method,
                route.path.format(**values),
                json=body,
                content=route.content,
                params=route.params,
            )
        results[role] = response.status_code
        assert "Traceback" not in response.text
        if response.status_code >= 400:
            # The Ray door answers in plain text, as Ray's own API does: Ray's tools print it.
            plain = response.headers["content-type"].startswith("text/plain")
            said = response.text if plain else response.json()["detail"]
            assert said.strip(), "every error says what is wrong"
    expected = dict(zip(ROLES, (401, *route.expect), strict=True))
    assert results == expected


def test_every_api_route_is_in_the_matrix(server: Server) -> None:
    with server.client() as client:
        spec = client.get("/openapi.json").json()
    documented = {
        (method.upper(), path)
        for path, item in spec["paths"].items()
        for method in item
        if path.startswith(("/api/v1", "/ray/")) and path != "/api/v1/auth/login"
    }
    # Routes on one's own session, password and tokens are covered in test_auth.py.
    own = {
        ("POST", "/api/v1/auth/logout"),
        ("POST", "/api/v1/users/me/password"),
        ("DELETE", "/api/v1/tokens/{token_id}"),
    }
    assert documented - own == {(r.method, r.path) for r in ROUTES}


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/openapi.json", "/docs"])
def test_public_routes_need_no_token(server: Server, path: str) -> None:
    with server.client() as client:
        assert client.get(path).status_code == 200


def test_malformed_and_short_authorization_is_rejected(server: Server, cast: Cast) -> None:
    """A bearer value is never taken as a user name, whatever its length."""
    for value in (cast.project.owner.username, "admin", "Bearer", "x" * 60, "fabp_" + "a" * 43):
        with server.client(Authorization=f"Bearer {value}") as client:
            assert client.get("/api/v1/users/me").status_code == 401


def test_objects_of_other_projects_are_invisible(server: Server, cast: Cast) -> None:
    """A member of project B asking for A's allocation through B's route gets 404."""
    other = create_project(server)
    allocation = _owners_allocation(cast)["allocation_id"]
    with server.client(other.owner.token) as client:
        response = client.get(f"/api/v1/projects/{other.name}/allocations/{allocation}")
        assert response.status_code == 404
        response = client.post(f"/api/v1/projects/{other.name}/allocations/{allocation}/release")
        assert response.status_code == 404
    with server.client(cast.project.owner.token) as client:
        state = client.get(f"/api/v1/projects/{cast.project.name}/allocations/{allocation}")
        assert state.json()["state"] == "active"
