"""Password hashing with Argon2id and the strength rule for new passwords."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from fabric.errors import InvalidSpec

_hasher = PasswordHasher()
# Verified against when a username does not exist, so both cases cost the same time.
_DUMMY_HASH = _hasher.hash("fabric-timing-equaliser")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def check_strength(password: str, username: str, min_length: int) -> None:
    if len(password) < min_length:
        raise InvalidSpec(f"password must be at least {min_length} characters long")
    if username.lower() in password.lower():
        raise InvalidSpec("password must not contain the username")
    if len(set(password)) < 5:
        raise InvalidSpec("password must use at least 5 different characters")
