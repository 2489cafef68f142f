"""Background processes that Fabric starts and stops on this machine (its server, its Ray head).

Each runs in a session of its own, named by a pid file, with output to a log file, so that
stopping it ends exactly its processes and nothing else on the machine.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path


class DaemonFailed(Exception):
    """The process did not start or answer; the message carries its log's last lines."""


class Daemon:
    def __init__(
        self, name: str, pid_file: Path, log_file: Path, own_log: Path | None = None
    ) -> None:
        """`log_file` captures the process's output; `own_log` is the log it writes itself,
        if any, shown with that output when it fails to start."""
        self.name = name
        self.pid_file = pid_file
        self.log_file = log_file
        self.own_log = own_log

    def pid(self) -> int | None:
        """The process, if the pid file names one that still runs."""
        try:
            pid = int(self.pid_file.read_text())
        except (FileNotFoundError, ValueError):
            return None
        return pid if _group_running(pid) else None

    def spawn(
        self, command: list[str], env: dict[str, str], ready: Callable[[], bool], timeout: float
    ) -> None:
        """Start the process and wait until `ready()` says it serves."""
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )
        self.pid_file.write_text(str(process.pid))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                self.pid_file.unlink(missing_ok=True)
                raise DaemonFailed(
                    f"the {self.name} exited at start (code {process.returncode}):\n"
                    + self.log_tail()
                )
            if ready():
                return
            time.sleep(0.2)
        self.stop()
        raise DaemonFailed(f"the {self.name} did not answer in {timeout:g} s:\n{self.log_tail()}")

    def stop(self, timeout: float = 30) -> bool:
        """Ask the process to stop (SIGTERM), wait for its processes, then force; False if none."""
        pid = self.pid()
        self.pid_file.unlink(missing_ok=True)
        if pid is None:
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            # Reap it if this process started it.
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            if not _group_running(pid):
                return True
            time.sleep(0.1)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        return True

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of its output, and of its own log (each named) when it has one."""
        if self.own_log is None:
            return _tail(self.log_file, lines) or "(no log)"
        parts = [
            f"{path}:\n{text}"
            for path in (self.log_file, self.own_log)
            if (text := _tail(path, lines))
        ]
        return "\n".join(parts) or "(no log)"


def _tail(path: Path, lines: int) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return ""


def _group_running(pgid: int) -> bool:
    """Whether any process of the group still runs; zombies, which nobody may reap, do not."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False
