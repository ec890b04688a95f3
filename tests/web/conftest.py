"""Console fixtures: Debian's chromium driven by Playwright, and live servers.

Never downloads a browser: Playwright launches /usr/bin/chromium (``make system-deps``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mongars.llm.base import LLMProvider
from tests.conftest import PASSWORD, LiveApi

CHROMIUM = Path(os.environ.get("MONGARS_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


# Package scope, not session: Playwright's sync API keeps an event loop running in
# the main thread while it is started, which would break asyncio.run() in later tests.
@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is not installed (make system-deps installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 820})
    context.set_default_timeout(10_000)
    yield context.new_page()
    context.close()


@pytest.fixture
def console_factory(live_factory: Callable[..., LiveApi]) -> Callable[..., LiveApi]:
    """Real uvicorn servers (``live_factory``), with memory on when given an embedder."""

    def make(
        provider: LLMProvider | None = None, embedder: Any = None, **overrides: Any
    ) -> LiveApi:
        if embedder is not None:
            overrides.setdefault("memory", {"enabled": True})
        return live_factory(provider, embedder, **overrides)

    return make


def ui_login(page: Any, base: str, username: str, password: str = PASSWORD) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{base}/chat")


def wait_live(page: Any) -> None:
    """Wait until chat.js has its WebSocket open (sends then stream)."""
    page.wait_for_selector("body[data-live='true']")
