"""Where the CLI finds its server and token: FABRIC_URL/FABRIC_TOKEN, else the login file."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from fabric.cli.errors import CliError
from fabric.cli.settings import load_settings
from fabric.sdk import Client

FILE_NAME = "credentials.json"
NOT_LOGGED_IN = "not logged in: run `fabric login`"


def path() -> Path:
    return load_settings().home / FILE_NAME


def default_url() -> str:
    """FABRIC_URL, else the address `fabric server` listens on by default."""
    if os.environ.get("FABRIC_URL"):
        return os.environ["FABRIC_URL"]
    return load_settings().local_url


def save(url: str, token: str) -> Path:
    """Write the login readable by its owner only: it holds a bearer secret."""
    target = path()
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    # An older file keeps its mode through O_CREAT: tighten it too.
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"url": url, "token": token}, handle)
        handle.write("\n")
    return target


def load() -> dict[str, Any] | None:
    """The saved login, or None when there is none."""
    target = path()
    try:
        data = json.loads(target.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read {target} ({exc}); run `fabric login` again") from None
    if not isinstance(data, dict) or not data.get("url") or not data.get("token"):
        raise CliError(f"{target} is incomplete; run `fabric login` again")
    return data


def remove() -> None:
    path().unlink(missing_ok=True)


def connect() -> Client:
    """A client for FABRIC_TOKEN (at FABRIC_URL), else for the saved login.

    The saved token goes only to the server it came from, never to another FABRIC_URL.
    """
    env_url = os.environ.get("FABRIC_URL")
    env_token = os.environ.get("FABRIC_TOKEN", "").strip()
    if env_token:
        return Client(env_url or default_url(), env_token)
    saved = load()
    if saved is None:
        raise CliError(NOT_LOGGED_IN)
    if env_url and env_url.rstrip("/") != saved["url"].rstrip("/"):
        raise CliError(
            f"FABRIC_URL is {env_url} but you are logged in to {saved['url']}: "
            "run `fabric login` or set FABRIC_TOKEN"
        )
    return Client(saved["url"], saved["token"])
