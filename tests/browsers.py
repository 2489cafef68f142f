"""A real headless browser for tests of web pages: the system's Chromium, driven by Playwright.

Playwright's own browser downloads are out of reach here, so it drives the Debian package
(`.ci/run` installs it). CI must have it; a laptop without it skips those tests.
"""

from __future__ import annotations

import os
import shutil

import pytest


def chromium() -> str:
    path = os.environ.get("FABRIC_TEST_CHROMIUM") or shutil.which("chromium")
    if not path:
        if os.environ.get("CI"):
            pytest.fail("no Chromium: CI must test web pages in a real browser")
        pytest.skip("browser tests need Chromium (apt-get install chromium)")
    return path
