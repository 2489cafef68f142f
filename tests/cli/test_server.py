"""`fabric server`'s log: one rotated file, sized and counted by the settings, without a line
for every request the server makes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# The server's log configuration applied as `fabric server` applies it, then a real httpx
# request, its own lines, a warning of httpx's and a print, which escapes logging.
LOGS = """
import http.server, logging, logging.config, threading
import httpx
from fabric.cli.server import log_config
from fabric.config import Settings

settings = Settings()
settings.log_dir.mkdir(parents=True)
logging.config.dictConfig(log_config(settings, to_stderr=False))

class Ray(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


ray = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Ray)
threading.Thread(target=ray.serve_forever, daemon=True).start()
httpx.get(f"http://127.0.0.1:{ray.server_address[1]}/")
ray.shutdown()
log = logging.getLogger("fabric.test")
for number in range(3500):
    log.info("line %05d %s", number, "x" * 1000)
logging.getLogger("httpx").warning("a warning of httpx's")
print("printed, not logged", flush=True)
"""


def test_the_log_rotates_by_size_and_count_and_leaves_httpx_requests_out(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "FABRIC_HOME": str(tmp_path),
        "FABRIC_LOG_MAX_MIB": "1",
        "FABRIC_LOG_BACKUPS": "2",
    }
    done = subprocess.run(
        [sys.executable, "-c", LOGS], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    # Logged to the file only: the output holds what escaped logging, and nothing else.
    assert (done.stdout, done.stderr) == ("printed, not logged\n", "")
    logs = tmp_path / "logs"
    assert sorted(path.name for path in logs.iterdir()) == [
        "server.log",
        "server.log.1",
        "server.log.2",
    ]
    text = {path.name: path.read_text() for path in logs.iterdir()}
    assert all(len(content.encode()) <= 2**20 for content in text.values())
    assert "line 03499" in text["server.log"] and "a warning of httpx's" in text["server.log"]
    assert not any("HTTP Request" in content for content in text.values())
