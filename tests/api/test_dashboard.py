"""The Ray dashboard behind Fabric's login: members only, read-only, opened by a one-use link."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
from playwright.sync_api import sync_playwright

from fabric.backends.local_head import LocalRayHead
from tests.browsers import chromium
from tests.factories import create_project
from tests.server import Server
from tests.stacks import RAY_ON_BOTH

# Ray's own dashboard, behind Fabric's door: on both databases.
pytestmark = RAY_ON_BOTH


def _dashboard(project: str) -> str:
    return f"/ray/{project}/dashboard/"


def test_members_see_the_dashboard_and_its_api(server: Server) -> None:
    project = create_project(server)
    with server.client(project.viewer.token) as client:
        page = client.get(_dashboard(project.name))
        assert page.status_code == 200
        assert "<title>Ray Dashboard</title>" in page.text
        assert "set-cookie" not in page.headers
        assert client.head(_dashboard(project.name)).status_code == 200
        version = client.get(_dashboard(project.name) + "api/version")
        assert version.json()["ray_version"]
        root = client.get(f"/ray/{project.name}/dashboard")
        assert (root.status_code, root.headers["location"]) == (308, _dashboard(project.name))


def test_others_do_not(server: Server) -> None:
    project, other = create_project(server), create_project(server)
    with server.client() as anonymous:
        assert anonymous.get(_dashboard(project.name)).status_code == 401
        assert anonymous.head(_dashboard(project.name)).status_code == 401
    with server.client(other.owner.token) as outsider:
        assert outsider.get(_dashboard(project.name)).status_code == 404
        assert outsider.post(f"/api/v1/projects/{project.name}/dashboard").status_code == 404


def test_the_dashboard_is_read_only(server: Server) -> None:
    project = create_project(server)
    with server.client(project.owner.token) as client:
        submitted = client.post(
            _dashboard(project.name) + "api/jobs/", json={"entrypoint": "python -c pass"}
        )
        assert submitted.status_code == 405
        assert "read-only" in submitted.json()["detail"]
        assert client.get(f"/api/v1/projects/{project.name}/jobs").json() == []


def test_a_link_opens_the_dashboard_in_a_browser_once(server: Server) -> None:
    project, other = create_project(server), create_project(server)
    with server.client(project.member.token) as client:
        opened = client.post(f"/api/v1/projects/{project.name}/dashboard")
    assert opened.status_code == 201
    link = opened.json()["url"]
    assert link.startswith(_dashboard(project.name) + "?ticket=")

    # A browser: no bearer header, a cookie jar, redirects followed.
    with httpx.Client(base_url=server.url, follow_redirects=True) as browser:
        page = browser.get(link)
        assert page.status_code == 200 and "Ray Dashboard" in page.text
        assert page.url.path == _dashboard(project.name), "the ticket leaves the address bar"
        cookie = browser.cookies["fabric_dashboard"]
        assert browser.get(_dashboard(project.name) + "api/version").status_code == 200
        # The cookie is good for this project's dashboard only: not the API, not another.
        assert browser.get("/api/v1/users/me", headers=_bearer(cookie)).status_code == 401
        elsewhere = browser.get(
            _dashboard(other.name), headers={"Cookie": f"fabric_dashboard={cookie}"}
        )
        assert elsewhere.status_code == 401
    with httpx.Client(base_url=server.url) as second_browser:
        reused = second_browser.get(link)
        assert reused.status_code == 401
        assert "fabric_dashboard" not in second_browser.cookies

    # A member who leaves loses the dashboard with the project.
    with server.client(project.owner.token) as owner:
        owner.delete(
            f"/api/v1/projects/{project.name}/members/{project.member.username}"
        ).raise_for_status()
    with httpx.Client(base_url=server.url, cookies={"fabric_dashboard": cookie}) as browser:
        assert browser.get(_dashboard(project.name)).status_code == 404


def _bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def test_the_dashboard_works_in_a_real_browser(server: Server) -> None:
    """Chromium opens the link: the page loads, its API calls stay behind the door, and each
    gets what Ray itself answers (a head without Prometheus or Serve answers some with errors).
    """
    project = create_project(server)
    with server.client(project.member.token) as client:
        link = client.post(f"/api/v1/projects/{project.name}/dashboard").json()["url"]
    answers: dict[str, int] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.on("response", lambda r: answers.setdefault(_path(r.url), r.status))
            # The overview page asks for the cluster's status; wait for that, then for quiet.
            with page.expect_response(lambda r: "/api/cluster_status" in r.url, timeout=90_000):
                page.goto(server.url + link)
            page.wait_for_load_state("networkidle")
            text = page.inner_text("body")
        finally:
            browser.close()
    prefix = _dashboard(project.name)
    assert all(path.startswith(prefix) for path in answers), answers
    api = {path: status for path, status in answers.items() if "/api/" in path}
    status = [code for path, code in api.items() if path.startswith(f"{prefix}api/cluster_status")]
    assert status == [200], api
    head = LocalRayHead(server.settings)
    with httpx.Client(base_url=head.dashboard_url, headers=head.auth_headers()) as ray:
        direct = {path: ray.get(path.removeprefix(prefix[:-1])).status_code for path in api}
    assert api == direct
    assert "Cluster" in text or "Jobs" in text, text[:500]


def _path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path
