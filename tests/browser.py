"""Shared by the browser tests: Debian's headless Chromium driven by Playwright (no browser download).

A browser test module sets ``pytestmark = REQUIRES_BROWSER``: it is skipped, with the reason, where the
``playwright`` package or ``/usr/bin/chromium`` is missing. The fixtures are registered for every test
module by ``tests/conftest.py``, with ``ui``: the same dashboard over plain HTTP. Screenshots go to
tests/output/ (git-ignored).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import API_KEY

CHROMIUM = Path("/usr/bin/chromium")
OUTPUT = Path(__file__).parent / "output"

REQUIRES_BROWSER = [
    pytest.mark.skipif(
        importlib.util.find_spec("playwright") is None,
        reason="the playwright package is not installed (pip install -e '.[dev]')",
    ),
    pytest.mark.skipif(
        not (CHROMIUM.exists() and os.access(CHROMIUM, os.X_OK)),
        reason=f"{CHROMIUM} is missing (Debian: apt-get install chromium)",
    ),
]

TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield chromium
        chromium.close()


@pytest.fixture()
def page(browser: Any, stack: dict[str, str]) -> Iterator[Any]:
    context = browser.new_context(base_url=stack["url"])
    tab = context.new_page()
    tab.set_default_timeout(TIMEOUT_MS)
    yield tab
    context.close()


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def shot(tab: Any, name: str) -> None:
    OUTPUT.mkdir(exist_ok=True)
    tab.screenshot(path=str(OUTPUT / f"ui-{name}.png"), full_page=True)


def log_in(tab: Any, key: str = API_KEY) -> None:
    tab.goto("/ui")
    assert "/ui/login" in tab.url  # no session yet
    tab.fill("#api_key", key)
    tab.click("button[type=submit]")


@pytest.fixture()
def ui(stack: dict[str, str]) -> Iterator[httpx.Client]:
    """An HTTP client signed in to the dashboard: it has the session cookie and no API key."""
    from tests.test_ui import browser, sign_in

    with browser(stack) as c:
        assert sign_in(c).status_code == 303
        yield c


def watch(tab: Any, expected: Callable[[Any], bool] = lambda response: False) -> list[str]:
    """What goes wrong in the tab from now on: script errors, console errors (a content security policy
    violation, "Refused to ...", is one) and answers of 400 and over. ``expected(response)`` names the
    answers a test provokes on purpose (a refused form), which are not problems."""
    problems: list[str] = []
    # a failed load is a console error too ("Failed to load resource"): it is judged by its response
    tab.on(
        "console",
        lambda m: (
            problems.append(m.text) if m.type == "error" and not m.text.startswith("Failed to load resource") else None
        ),
    )
    tab.on("pageerror", lambda e: problems.append(str(e)))
    tab.on(
        "response", lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 and not expected(r) else None
    )
    return problems
