"""Errors reach clients as JSON that says what to fix, never as a stack trace."""

import httpx
from fastapi import FastAPI

from fabric.api import errors
from tests.factories import create_project
from tests.server import Server, serving


def test_unexpected_errors_answer_500_without_details_and_keep_serving() -> None:
    app = FastAPI()
    errors.install(app)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internals")

    @app.get("/fine")
    def fine() -> dict[str, bool]:
        return {"ok": True}

    with serving(app) as url, httpx.Client(base_url=url) as client:
        response = client.get("/boom")
        assert response.status_code == 500
        assert response.json() == {"detail": "internal error; the server log has the details"}
        assert "secret internals" not in response.text
        assert client.get("/fine").json() == {"ok": True}


def test_times_without_offset_are_refused_by_name(server: Server) -> None:
    project = create_project(server)
    with server.client(project.owner.token) as client:
        naive = client.get(
            f"/api/v1/projects/{project.name}/audit", params={"since": "2026-01-01T00:00:00"}
        )
        aware = client.get(
            f"/api/v1/projects/{project.name}/audit", params={"since": "2026-01-01T00:00:00Z"}
        )
    assert naive.status_code == 422
    assert naive.json()["errors"][0]["field"] == "query.since"
    assert aware.status_code == 200


def test_unknown_routes_and_methods_answer_json(server: Server) -> None:
    with server.admin() as client:
        missing = client.get("/api/v1/nothing-here")
        wrong_method = client.put("/api/v1/users/me")
    assert missing.status_code == 404
    assert wrong_method.status_code == 405
    assert missing.json()["detail"] and wrong_method.json()["detail"]
