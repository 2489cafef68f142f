"""The README's tour, run as written: every command of its ```bash block in order, in a copy
of `demo/tour/`, against a real embedded default (`fabric up` with FABRIC_HOME unset, so at
`~/.fabric` of a HOME of its own), each exiting 0 and printing what its `# →` lines show.

The tour runs on the session's Ray head (tests/conftest.py `ray_settings`): `fabric up` finds
it running and starts only the server. Its last command, `fabric down`, stops the server but
is kept from the head, which the rest of the session still uses: it is told a Ray folder with
no head in it. Stopping the head is tests/cli/test_embedded.py's part. What the tour left on
the head (its endpoint, its warm runner) is removed after it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from fabric.backends.local_head import LocalRayHead
from fabric.backends.local_ray import LocalRayBackend
from fabric.config import Settings
from tests.server import free_port

ROOT = Path(__file__).parent.parent
README = ROOT / "README.md"
TOUR_FILES = ROOT / "demo" / "tour"
HEADING = "## A short tour"
SHOWN = "# → "
# What the README says that a reader's machine has and this test's has not.
README_URL = "127.0.0.1:8080"
TOKEN_PLACEHOLDER = "fabp_..."
TOKEN = re.compile(r"\bfabp_\S+")
# The project the tour makes, whose Serve applications are removed after it.
PROJECT = "vision"
# Every step waits for its job, run or deployment to end; no step takes this long.
STEP_LIMIT_SECONDS = 300


@dataclass
class Step:
    command: str
    shown: list[str] = field(default_factory=list)


def tour_steps(readme: str) -> list[Step]:
    """The commands of the tour's first ```bash block (lines ending in `\\` joined), each
    with the `# →` lines that follow it; other comments are the reader's."""
    assert HEADING in readme, f"README.md has no {HEADING!r} section"
    found = re.search(r"^```bash\n(.*?)^```", readme.split(HEADING, 1)[1], re.S | re.M)
    assert found, f"README.md's {HEADING!r} section has no ```bash block"
    steps: list[Step] = []
    pending = ""
    for line in found[1].splitlines():
        if pending:
            pending += "\n" + line
        elif line.startswith(SHOWN):
            assert steps, f"{line!r} follows no command"
            steps[-1].shown.append(line.removeprefix(SHOWN).strip())
            continue
        elif line.startswith("#") or not line.strip():
            continue
        else:
            pending = line
        if not pending.endswith("\\"):
            steps.append(Step(pending))
            pending = ""
    assert not pending, f"the tour ends inside a command: {pending!r}"
    return steps


@pytest.fixture
def home() -> Iterator[Path]:
    """A HOME with a short path: the tour's FABRIC_HOME is its `.fabric`."""
    folder = Path(tempfile.mkdtemp(prefix="fabric-tour-", dir="/tmp"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def environment(home: Path, port: int, ray: dict[str, object]) -> dict[str, str]:
    """The caller's environment without its FABRIC_ settings, the venv's commands first."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("FABRIC_")}
    env["HOME"] = str(home)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["FABRIC_PORT"] = str(port)
    env.update({f"FABRIC_{name.upper()}": str(value) for name, value in ray.items()})
    return env


def run(command: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-o", "pipefail", "-c", command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=STEP_LIMIT_SECONDS,
        check=False,
    )


def without_the_head(env: dict[str, str], home: Path) -> dict[str, str]:
    """`fabric down` that stops the tour's server and leaves the session's head running."""
    empty = home / "no-head"
    empty.mkdir(exist_ok=True)
    return {**env, "FABRIC_RAY_FOLDER": str(empty)}


def clear_the_head(home: Path, ray: dict[str, object]) -> None:
    """Remove what the tour's server left on the shared head: its Serve applications and its
    warm runner (the server gone, nothing else would)."""
    backend = LocalRayBackend(LocalRayHead(Settings(home=home / ".fabric", **ray)))
    try:
        if any(name.startswith(f"{PROJECT}.") for name in backend.api.serve_applications()):
            backend.apply_serve_config(PROJECT, [])
        backend.warm.shutdown()
    finally:
        backend.close()


def test_the_tour_starts_with_up_and_ends_with_down() -> None:
    commands = [step.command.split()[:2] for step in tour_steps(README.read_text())]
    assert commands[0] == ["fabric", "up"] and commands[-1] == ["fabric", "down"]


@pytest.mark.ray  # on the session's Ray head (conftest marks `ray_settings` users too)
@pytest.mark.timeout(600)  # some twenty commands, each starting the CLI afresh
def test_the_readme_tour_runs_as_written(
    ray_settings: dict[str, object], home: Path, tmp_path: Path
) -> None:
    port = free_port()
    env = environment(home, port, ray_settings)
    work = tmp_path / "tour"
    shutil.copytree(TOUR_FILES, work)
    here = f"127.0.0.1:{port}"
    token: str | None = None
    try:
        for step in tour_steps(README.read_text()):
            command = step.command.replace(README_URL, here)
            if TOKEN_PLACEHOLDER in command:
                assert token, "the tour uses a token before it creates one"
                command = command.replace(TOKEN_PLACEHOLDER, token)
            stopping = command.split()[:2] == ["fabric", "down"]
            done = run(command, work, without_the_head(env, home) if stopping else env)
            printed = done.stdout + done.stderr
            assert done.returncode == 0, f"$ {step.command}\n{printed}"
            for text in step.shown:
                assert text.replace(README_URL, here) in printed, f"$ {step.command}\n{printed}"
            if command.startswith("fabric token create"):
                created = TOKEN.search(done.stdout)
                assert created, f"$ {step.command}\n{printed}"
                token = created[0]
    finally:
        run("fabric down", work, without_the_head(env, home))
        clear_the_head(home, ray_settings)
