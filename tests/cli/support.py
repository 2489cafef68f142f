"""Running the `fabric` CLI in tests, and checking what it printed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from typer.testing import CliRunner, Result

from fabric.cli.main import app
from tests.server import Server


@dataclass
class Fabric:
    """`fabric ARGS`: with `token`, as FABRIC_URL/FABRIC_TOKEN; without, from the saved login."""

    server: Server
    home: Path

    def __call__(
        self,
        *args: str,
        token: str | None = None,
        input: str | None = None,
        env: dict[str, str | None] | None = None,
    ) -> Result:
        base: dict[str, str | None] = {
            "FABRIC_HOME": str(self.home),
            "FABRIC_URL": self.server.url if token else None,
            "FABRIC_TOKEN": token,
        }
        return CliRunner().invoke(app, list(args), input=input, env={**base, **(env or {})})

    def login(self, username: str, password: str) -> Result:
        """`fabric login` with the password on stdin, saving the session in this home."""
        return self(
            "login",
            "--url",
            self.server.url,
            "--username",
            username,
            "--password-stdin",
            input=password + "\n",
        )


def ok(result: Result) -> Result:
    assert result.exit_code == 0, result.output
    return result


def one_error_line(result: Result, code: int = 1) -> str:
    """The single `error:` line a failed command prints, checked to be nothing more."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("error: ")
    return result.stderr.rstrip("\n")
