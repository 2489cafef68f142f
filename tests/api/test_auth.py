"""Login, sessions, API tokens, rate limits, passwords at rest and in logs, SSO."""

from __future__ import annotations

import itertools
import logging
import stat
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select

from fabric.db.models import Base
from tests.factories import PASSWORD, create_user, login, unique
from tests.server import REMOTE_USER_HEADER, Server, running_server
from tests.stacks import WITHOUT_RAY

# Logins, tokens and passwords never reach Ray: the fake backend stands in for it.
pytestmark = WITHOUT_RAY

_ADDRESSES = itertools.count(1)


def _address() -> str:
    """A client address no other test uses, so that per-address limits of tests never mix
    (drawn at random, two tests could share one and count each other's failures)."""
    return f"198.51.100.{next(_ADDRESSES)}"


def _login(server: Server, username: str, password: str, address: str) -> int:
    with server.client(**{"X-Forwarded-For": address}) as client:
        return client.post(
            "/api/v1/auth/login", json={"username": username, "password": password}
        ).status_code


def test_login_token_expires(server: Server, clock) -> None:
    user = create_user(server)
    with server.client(user.token) as client:
        assert client.get("/api/v1/users/me").json()["username"] == user.username
        clock.advance(server.settings.session_ttl_seconds + 1)
        response = client.get("/api/v1/users/me")
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_wrong_password_and_unknown_user_look_the_same(server: Server) -> None:
    user = create_user(server)
    with server.client(**{"X-Forwarded-For": _address()}) as client:
        wrong = client.post(
            "/api/v1/auth/login", json={"username": user.username, "password": "nope-nope-nope"}
        )
        unknown = client.post(
            "/api/v1/auth/login", json={"username": unique("ghost"), "password": "nope-nope-nope"}
        )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()


def test_logout_ends_the_session(server: Server) -> None:
    user = create_user(server)
    with server.client(user.token) as client:
        assert client.post("/api/v1/auth/logout").status_code == 204
        response = client.get("/api/v1/users/me")
    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]


def test_api_token_shown_once_then_revoked(server: Server) -> None:
    user = create_user(server)
    with server.client(user.token) as client:
        created = client.post("/api/v1/tokens", json={"name": "laptop", "expires_in_days": 30})
        assert created.status_code == 201
        secret = created.json()["token"]
        listed = client.get("/api/v1/tokens").json()
        assert [t["name"] for t in listed] == ["laptop"]
        assert secret not in str(listed)
        assert listed[0]["prefix"] == secret[:9]
    with server.client(secret) as api:
        assert api.get("/api/v1/users/me").json()["username"] == user.username
    with server.client(user.token) as client:
        assert client.delete(f"/api/v1/tokens/{created.json()['id']}").status_code == 204
    with server.client(secret) as api:
        response = api.get("/api/v1/users/me")
    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]


def test_api_tokens_expire_and_are_bounded(server: Server, clock) -> None:
    user = create_user(server)
    with server.client(user.token) as client:
        too_long = client.post(
            "/api/v1/tokens",
            json={"name": "forever", "expires_in_days": server.settings.api_token_max_days + 1},
        )
        assert too_long.status_code == 422
        assert str(server.settings.api_token_max_days) in too_long.json()["detail"]
        secret = client.post("/api/v1/tokens", json={"name": "ci", "expires_in_days": 1}).json()[
            "token"
        ]
    clock.advance(86400 + 1)
    with server.client(secret) as api:
        response = api.get("/api/v1/users/me")
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]


def test_token_routes_touch_only_api_tokens(server: Server) -> None:
    """Revoking by id ends API tokens only; logout ends login sessions only."""
    user = create_user(server)
    with server.client(user.token) as client:
        created = client.post("/api/v1/tokens", json={"name": "ci"}).json()
        # The user's login session is the token made just before this one.
        assert client.delete(f"/api/v1/tokens/{created['id'] - 1}").status_code == 404
        assert client.get("/api/v1/users/me").status_code == 200
    with server.client(created["token"]) as api:
        refused = api.post("/api/v1/auth/logout")
        assert refused.status_code == 422
        assert "revoke an API token" in refused.json()["detail"]
        assert api.get("/api/v1/users/me").status_code == 200


def test_tokens_of_others_cannot_be_revoked(server: Server) -> None:
    alice, bob = create_user(server), create_user(server)
    with server.client(alice.token) as client:
        token_id = client.post("/api/v1/tokens", json={"name": "mine"}).json()["id"]
    with server.client(bob.token) as client:
        assert client.delete(f"/api/v1/tokens/{token_id}").status_code == 404


def test_failed_logins_are_limited_per_user(server: Server, clock) -> None:
    user = create_user(server)
    for _ in range(server.settings.login_max_failures):
        assert _login(server, user.username, "wrong-password!", _address()) == 401
    with server.client(**{"X-Forwarded-For": _address()}) as client:
        limited = client.post(
            "/api/v1/auth/login", json={"username": user.username, "password": PASSWORD}
        )
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) == server.settings.login_window_seconds
    clock.advance(server.settings.login_window_seconds + 1)
    assert _login(server, user.username, PASSWORD, _address()) == 200


def test_failed_logins_are_limited_per_address(server: Server, clock) -> None:
    user = create_user(server)
    address = _address()
    for _ in range(server.settings.login_client_max_failures):
        assert _login(server, unique("guess"), "wrong-password!", address) == 401
    assert _login(server, user.username, PASSWORD, address) == 429
    assert _login(server, user.username, PASSWORD, _address()) == 200


def test_passwords_are_never_stored_or_logged_in_clear(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    first, second, third = (f"Secret-{uuid.uuid4().hex}" for _ in range(3))
    username = unique("careful")
    with server.admin() as admin:
        admin.post(
            "/api/v1/users", json={"username": username, "password": first}
        ).raise_for_status()
        bad = admin.post("/api/v1/users", json={"username": unique("x"), "password": [first]})
        assert bad.status_code == 422
        assert first not in bad.text, "validation errors must not echo submitted values"
    token = login(server, username, first)
    with server.client(token) as client:
        client.post(
            "/api/v1/users/me/password",
            json={"current_password": first, "new_password": second},
        ).raise_for_status()
    with server.admin() as admin:
        admin.patch(f"/api/v1/users/{username}", json={"password": third}).raise_for_status()
    login(server, username, third)

    engine = create_engine(server.settings.resolved_database_url)
    with engine.connect() as conn:
        stored = " ".join(
            str(row) for table in Base.metadata.sorted_tables for row in conn.execute(select(table))
        )
        hashed = conn.execute(
            select(Base.metadata.tables["users"].c.password_hash).where(
                Base.metadata.tables["users"].c.username == username
            )
        ).scalar_one()
    engine.dispose()
    assert hashed.startswith("$argon2id$")
    logs = caplog.text + "".join(p.read_text() for p in Path(server.settings.home).rglob("*.log"))
    for secret in (first, second, third):
        assert secret not in stored
        assert secret not in logs


def test_password_reset_by_admin_ends_the_users_sessions(server: Server) -> None:
    user = create_user(server)
    with server.admin() as admin:
        admin.patch(
            f"/api/v1/users/{user.username}", json={"password": "brand-new-password-1"}
        ).raise_for_status()
    with server.client(user.token) as client:
        assert client.get("/api/v1/users/me").status_code == 401
    assert login(server, user.username, "brand-new-password-1")


def test_own_password_change_needs_the_current_one(server: Server) -> None:
    user = create_user(server)
    with server.client(user.token) as client:
        wrong = client.post(
            "/api/v1/users/me/password",
            json={"current_password": "not-it-at-all", "new_password": "another-password-2"},
        )
        weak = client.post(
            "/api/v1/users/me/password",
            json={"current_password": PASSWORD, "new_password": "short"},
        )
    assert wrong.status_code == 403
    assert weak.status_code == 422
    assert "at least" in weak.json()["detail"]
    assert login(server, user.username, PASSWORD)


def test_disabled_user_is_locked_out(server: Server) -> None:
    user = create_user(server)
    with server.admin() as admin:
        admin.patch(f"/api/v1/users/{user.username}", json={"disabled": True}).raise_for_status()
    with server.client(user.token) as client:
        assert client.get("/api/v1/users/me").status_code == 401
    assert _login(server, user.username, PASSWORD, _address()) == 401


def test_remote_user_from_trusted_proxy_is_signed_in(server: Server) -> None:
    username = unique("sso")
    with server.client(**{REMOTE_USER_HEADER: username}) as client:
        me = client.get("/api/v1/users/me")
        assert me.status_code == 200
        assert me.json()["username"] == username
        assert client.post("/api/v1/projects", json={"name": unique("sso")}).status_code == 201


def test_remote_user_header_from_untrusted_peer_is_ignored(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'sso.db'}"
    # The proxy is elsewhere: requests from loopback may not speak for a remote user.
    with (
        running_server(
            tmp_path,
            url,
            "sqlite",
            remote_user_header=REMOTE_USER_HEADER,
            trusted_proxies=["192.0.2.7"],
        ) as server,
        server.client(**{REMOTE_USER_HEADER: "admin"}) as client,
    ):
        assert client.get("/api/v1/users/me").status_code == 401


def test_remote_user_without_account_is_refused_unless_autocreate(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'sso.db'}"
    with (
        running_server(
            tmp_path,
            url,
            "sqlite",
            remote_user_header=REMOTE_USER_HEADER,
            trusted_proxies=["127.0.0.1"],
        ) as server,
        server.client(**{REMOTE_USER_HEADER: "newcomer"}) as client,
    ):
        response = client.get("/api/v1/users/me")
    assert response.status_code == 401
    assert "no Fabric account" in response.json()["detail"]


def test_first_start_generates_a_one_time_admin_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'first.db'}"
    with running_server(tmp_path, url, "sqlite", admin_password=None) as server:
        password_file = server.settings.initial_password_file
        password = password_file.read_text().strip()
        assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
        assert password in capsys.readouterr().out
        with server.admin() as admin:
            admin.post(
                "/api/v1/users/me/password",
                json={"current_password": password, "new_password": "chosen-by-the-owner-9"},
            ).raise_for_status()
        assert not password_file.exists()
