"""Settings refuse configurations that would be unsafe or half-done, with a message to fix it."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from fabric.config import Settings

OIDC = {
    "oidc_issuer": "https://sso.example.com/realms/ml",
    "oidc_client_id": "fabric",
    "oidc_client_secret": "s3cret",
    "oidc_redirect_uri": "https://fabric.example.com/auth/callback",
}


def test_defaults_live_under_fabric_home(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    assert settings.resolved_database_url == f"sqlite:///{tmp_path / 'fabric.db'}"
    assert settings.storage_root == tmp_path / "storage"
    assert (settings.host, settings.port) == ("127.0.0.1", 8080)


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FABRIC_HOME", str(tmp_path))
    monkeypatch.setenv("FABRIC_DATABASE_URL", "postgresql://u:p@db:5432/fabric")
    monkeypatch.setenv("FABRIC_PORT", "9090")
    settings = Settings()
    assert settings.resolved_database_url == "postgresql://u:p@db:5432/fabric"
    assert settings.port == 9090


def test_complete_oidc_configuration_is_accepted() -> None:
    assert Settings(**OIDC).oidc_enabled


def test_half_configured_oidc_names_what_is_missing() -> None:
    with pytest.raises(ValidationError, match="FABRIC_OIDC_CLIENT_SECRET"):
        Settings(**{**OIDC, "oidc_client_secret": None})


@pytest.mark.parametrize("issuer", ["http://sso.example.com", "sso.example.com", "https://"])
def test_oidc_issuer_must_be_an_https_url(issuer: str) -> None:
    with pytest.raises(ValidationError, match="FABRIC_OIDC_ISSUER"):
        Settings(**{**OIDC, "oidc_issuer": issuer})


def test_oidc_allows_http_on_localhost_for_development() -> None:
    assert Settings(**{**OIDC, "oidc_issuer": "http://localhost:8081/realms/dev"}).oidc_enabled


@pytest.mark.parametrize(
    ("variable", "value"), [("FABRIC_LOG_MAX_MIB", "0"), ("FABRIC_LOG_BACKUPS", "0")]
)
def test_the_log_always_rotates(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    # Python's rotating log never rotates with a size or a count of 0: it would grow forever.
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError, match=variable.removeprefix("FABRIC_").lower()):
        Settings()


def test_the_access_log_is_off_unless_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().access_log is False
    monkeypatch.setenv("FABRIC_ACCESS_LOG", "true")
    assert Settings().access_log is True


def test_remote_user_header_needs_trusted_proxies() -> None:
    with pytest.raises(ValidationError, match="FABRIC_TRUSTED_PROXIES"):
        Settings(remote_user_header="X-Remote-User")


def test_trusted_proxies_must_be_addresses() -> None:
    with pytest.raises(ValidationError, match="not an IP address"):
        Settings(remote_user_header="X-Remote-User", trusted_proxies=["proxy.internal"])


def test_secret_settings_do_not_print() -> None:
    settings = Settings(**OIDC, admin_password="root-password-1")
    assert "s3cret" not in repr(settings)
    assert "root-password-1" not in repr(settings)


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("127.0.0.1", "http://127.0.0.1:8080"),
        ("0.0.0.0", "http://127.0.0.1:8080"),
        ("::", "http://127.0.0.1:8080"),
        ("::1", "http://[::1]:8080"),
        ("fabric.internal", "http://fabric.internal:8080"),
    ],
)
def test_local_url_reaches_the_server_from_this_machine(host: str, url: str) -> None:
    assert Settings(host=host).local_url == url


def test_the_reconciler_lease_outlasts_its_passes() -> None:
    assert Settings().reconciler_lease.total_seconds() == 10
    assert Settings(sync_interval_seconds=2).reconciler_lease.total_seconds() == 40
    with pytest.raises(ValidationError, match="FABRIC_RECONCILER_LEASE_SECONDS"):
        Settings(reconciler_lease_seconds=0.3)
