import pytest

from fabric.auth import secrets
from fabric.auth.passwords import check_strength, hash_password, verify_password
from fabric.errors import InvalidSpec


def test_secrets_are_random_and_stored_as_digests() -> None:
    one, two = secrets.new_secret("api"), secrets.new_secret("api")
    assert one.plain != two.plain
    assert one.digest == secrets.digest(one.plain) != one.plain
    assert secrets.looks_like_token(one.plain)
    assert one.plain.startswith("fabp_") and secrets.new_secret("session").plain.startswith("fabs_")


@pytest.mark.parametrize("value", ["alice", "fabp_short", "x" * 60, "fabp_" + "a" * 200])
def test_foreign_values_are_not_tokens(value: str) -> None:
    assert not secrets.looks_like_token(value)


def test_password_hash_verifies_only_the_password() -> None:
    stored = hash_password("a-good-long-password")
    assert verify_password(stored, "a-good-long-password")
    assert not verify_password(stored, "a-good-long-passwore")
    assert not verify_password(None, "anything-at-all")
    assert not verify_password("not-a-hash", "anything-at-all")


@pytest.mark.parametrize(
    ("password", "message"),
    [("short", "at least 12"), ("has-alice-inside", "username"), ("aaaaaaaaaaaaaaaa", "different")],
)
def test_weak_passwords_are_refused(password: str, message: str) -> None:
    with pytest.raises(InvalidSpec, match=message):
        check_strength(password, "alice", 12)
