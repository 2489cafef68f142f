"""A real headless browser for tests of web pages: the system's Chromium, driven by Playwright.

Playwright's own browser downloads are out of reach here, so it drives the Debian package
(`.ci/run` installs it).
"""

from __future__ import annotations

import os
import shutil

from tests.needs import missing


def chromium() -> str:
    path = os.environ.get("FABRIC_TEST_CHROMIUM") or shutil.which("chromium")
    if not path:
        missing("Chromium, for tests in a real browser", "apt-get install chromium")
    return path
