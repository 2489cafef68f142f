"""`shell`: run a command in the job's runtime environment, its output streamed to the logs.

A job already runs code of its submitter's choosing (its entrypoint), so this adds no power;
it only makes a command a template, with its exit status kept and chosen files collected.
Nothing here prints the environment: pass secrets as `runtime_env` variables and refer to
them (`$TOKEN`) rather than writing them into the command, which is logged with the params.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, model_validator

from fabric import runtime

NAME = "shell"
FILES = "files"


class Params(BaseModel):
    command: str | None = Field(
        default=None, min_length=1, description="a command line, run by bash -c"
    )
    argv: list[str] | None = Field(
        default=None,
        min_length=1,
        description="a program and its arguments, run as they are (no shell), instead of a "
        "command line",
    )
    collect: list[str] = Field(
        default_factory=list,
        description="glob patterns, relative to the working directory, of files the command "
        "makes to copy into the job's folder, e.g. report/*.csv",
    )

    @model_validator(mode="after")
    def _one_command(self) -> Params:
        if (self.command is None) == (self.argv is None):
            raise ValueError("give either command (a command line) or argv (a list)")
        return self


def execute(name: str, argv: Sequence[str], env: Mapping[str, str] | None = None) -> int:
    """Run `argv` with the job's output streams; its exit status as a shell reports it
    (128 + N when signal N ended it)."""
    try:
        returncode = subprocess.run(list(argv), env=env, check=False).returncode
    except FileNotFoundError:
        raise SystemExit(f"{name}: no program {argv[0]!r} on the PATH") from None
    return 128 - returncode if returncode < 0 else returncode


def finish(name: str, code: int, **outputs: Any) -> dict[str, Any]:
    """The outputs with the exit status; on a failure they are recorded and the job exits
    with the same status."""
    outputs = {"exit_code": code, **outputs}
    if code:
        runtime.write_outputs(**outputs)
        print(f"{name}: the command exited with code {code}", file=sys.stderr, flush=True)
        raise SystemExit(code)
    return outputs


def _collect(patterns: list[str]) -> list[str]:
    """Copy the files matching `patterns` into the job's folder, keeping relative paths."""
    here = Path.cwd().resolve()
    target = runtime.run_dir() / FILES
    copied = []
    for pattern in patterns:
        for path in sorted(here.glob(pattern)):
            if not path.resolve().is_relative_to(here):
                raise SystemExit(f"{NAME}: {pattern!r} reaches outside the working directory")
            if path.is_file():
                relative = path.relative_to(here)
                (target / relative).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target / relative)
                copied.append(str(target / relative))
    return copied


def run(params: Params) -> dict[str, Any]:
    code = execute(NAME, params.argv or ["bash", "-c", params.command or ""])
    # Collected on a failure too: a failing command's reports tell why.
    return finish(NAME, code, files=_collect(params.collect))


TEMPLATE = runtime.Template(
    name=NAME,
    group="generic",
    description="Run a command (a bash command line or a program with its arguments) in the "
    "job's environment, its output streamed to the logs and its exit status the job's; copy "
    "the files it makes that match given patterns into the job's folder.",
    params=Params,
    run=run,
    resources={"cpu": 1.0},
    outputs={
        "exit_code": "the command's exit status (the job fails when it is not 0)",
        "files": "the collected files, copied under the job's folder (files/...)",
    },
)

if __name__ == "__main__":
    TEMPLATE.main()
