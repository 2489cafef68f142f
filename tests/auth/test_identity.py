from fabric.auth.identity import client_address, remote_user
from fabric.config import Settings

SSO = Settings(remote_user_header="X-Remote-User", trusted_proxies=["10.0.0.0/8"])


def test_forwarded_address_is_taken_only_from_a_trusted_proxy() -> None:
    assert client_address(SSO, "10.1.2.3", "198.51.100.1, 10.9.9.9") == "10.9.9.9"
    assert client_address(SSO, "10.1.2.3", "198.51.100.1") == "198.51.100.1"
    assert client_address(SSO, "203.0.113.5", "198.51.100.1") == "203.0.113.5"


def test_remote_user_needs_a_trusted_peer_and_the_header() -> None:
    headers = {"x-remote-user": "Alice "}
    assert remote_user(SSO, "10.1.2.3", headers) == "alice"
    assert remote_user(SSO, "203.0.113.5", headers) is None
    assert remote_user(SSO, "10.1.2.3", {}) is None
    assert remote_user(Settings(), "10.1.2.3", headers) is None
