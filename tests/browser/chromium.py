"""Headless Chromium for the tests that need a real browser: Debian's binary driven by Playwright.

Never `playwright install` (it downloads a browser); scripts/setup.sh installs Debian's chromium.
Without it or the playwright package the tests skip, unless FEDGE_REQUIRE_DATASETS=1 (scripts/test.sh,
CI), where they fail instead, as tests/conftest.py does for datasets.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
# The CI flags of ../shared/anchors/browser.md; Playwright adds the anti-throttling ones itself.
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-unsafe-swiftshader",
]


def missing(reason: str) -> None:
    """Skip, or fail under FEDGE_REQUIRE_DATASETS=1."""
    if os.environ.get("FEDGE_REQUIRE_DATASETS") == "1":
        pytest.fail(f"FEDGE_REQUIRE_DATASETS=1 but the browser tests cannot run: {reason}")
    pytest.skip(reason)


@contextmanager
def chromium() -> Iterator[Any]:
    """A launched headless Chromium (a Playwright Browser), closed on exit."""
    if not CHROMIUM.exists():
        missing(f"{CHROMIUM} is missing (scripts/setup.sh installs Debian's chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("the playwright package is missing (pip install -e '.[dev]'; never `playwright install`)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        try:
            yield browser
        finally:
            browser.close()
