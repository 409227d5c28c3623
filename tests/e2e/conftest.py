"""Browser fixtures: Debian's Chromium driven by Playwright (nothing is downloaded), axe-core served
from static/vendor, and helpers shared by the journeys."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
AXE_JS = REPO_ROOT / "static" / "vendor" / "axe.min.js"
SCREENSHOTS = REPO_ROOT / "build" / "e2e-screenshots"
VIEWPORTS = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1280, "height": 800}}
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]


@pytest.fixture(scope="module")
def chromium():
    """One browser per test module. Playwright's sync API keeps an event loop running in the test
    thread while it is started, and Django's ORM then refuses to run there
    (SynchronousOnlyOperation). The thread is not really async, so the standard switch is safe; it
    is set only while the browser exists, so other modules keep Django's check."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} is missing: apt-get install -y chromium")
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
            )
            try:
                yield browser
            finally:
                browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def shots():
    """A function that saves numbered screenshots under build/e2e-screenshots/<lang>-<viewport>/."""

    def factory(lang: str, viewport: str):
        folder = SCREENSHOTS / f"{lang}-{viewport}"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True, exist_ok=True)
        counter = iter(range(1, 100))

        def shot(page, name: str, *, full_page: bool = True) -> Path:
            path = folder / f"{next(counter):02d}-{name}.png"
            page.screenshot(path=str(path), full_page=full_page)
            return path

        return shot

    return factory
