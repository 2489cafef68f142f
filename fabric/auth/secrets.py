"""Bearer-token secrets: random, shown once, stored only as a SHA-256 digest.

A SHA-256 digest (not Argon2) is right here: the secrets carry 256 bits of randomness, so
nothing can be guessed from the digest, and each request can be checked with one indexed lookup.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

PREFIXES = {
    "session": "fabs_",
    "api": "fabp_",
    "job": "fabj_",
    "ticket": "fabt_",
    "dashboard": "fabd_",
    "endpoint": "fabe_",
}


@dataclass(frozen=True)
class NewSecret:
    plain: str
    digest: str
    prefix: str


def new_secret(kind: str) -> NewSecret:
    plain = PREFIXES[kind] + secrets.token_urlsafe(32)
    return NewSecret(plain=plain, digest=digest(plain), prefix=plain[:9])


def digest(plain: str) -> str:
    return hashlib.sha256(plain.encode()).hexdigest()


def looks_like_token(value: str) -> bool:
    """Reject anything that is not one of ours before touching the database."""
    return value.startswith(tuple(PREFIXES.values())) and 40 <= len(value) <= 100
