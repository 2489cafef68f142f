"""Reading passwords: from stdin for scripts, else hidden prompts; never from arguments."""

from __future__ import annotations

import sys

import typer

from fabric.cli.errors import CliError


def from_stdin() -> str:
    line = sys.stdin.readline().rstrip("\r\n")
    if not line:
        raise CliError("--password-stdin: no password on the first line of stdin")
    return line


def read(prompt: str, *, use_stdin: bool, confirm: bool = False) -> str:
    """Read a password from stdin when asked to, else prompt (twice when `confirm`)."""
    if use_stdin:
        return from_stdin()
    return typer.prompt(prompt, hide_input=True, confirmation_prompt=confirm)
