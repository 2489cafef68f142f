"""Who is calling: the client's address, and the user a trusted SSO proxy vouches for."""

from __future__ import annotations

import ipaddress

from fabric.config import Settings


def _trusted(settings: Settings, peer: str) -> bool:
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False
    return any(address in network for network in settings.trusted_networks)


def client_address(settings: Settings, peer: str, forwarded_for: str | None) -> str:
    """The caller's address: the socket peer, or what a trusted proxy says it forwarded."""
    if forwarded_for and _trusted(settings, peer):
        return forwarded_for.split(",")[-1].strip()[:64]
    return peer[:64]


def remote_user(settings: Settings, peer: str, headers: dict[str, str]) -> str | None:
    """The username in the remote-user header, when SSO is on and a trusted proxy sent it."""
    if not settings.remote_user_header or not _trusted(settings, peer):
        return None
    value = headers.get(settings.remote_user_header.lower(), "").strip()
    return value.lower() or None
