"""The browser tests' fixtures: Chromium per module (Playwright, the system's binary:
``tests.browser``), a page per test, and a real service per module (``site``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from pardag.server.auth import COOKIE
from pardag.store import open_store
from tests.browser import chromium_path
from tests.server.conftest import Served, serving

PATIENCE_MS = 30_000
"""How long a browser test waits for what must happen, in ms (a guard, not a measure): for
the page's own waits and for ``expect``, whose default (5 s) is shorter than some runs take."""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium for one test module. Not for the session: Playwright's sync API runs an
    asyncio loop in this thread while it is open, and the suite's other tests start loops of
    their own (``wf.run()`` refuses to run inside a running one)."""
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=PATIENCE_MS)

    with sync_playwright() as driver:
        launched = driver.chromium.launch(
            executable_path=chromium_path(), args=["--no-sandbox", "--disable-gpu"]
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh page in its own context (no cookies shared between tests). A script error, or
    anything the browser reports as an error but a failed load (the tests ask for refused
    and missing pages on purpose), fails the test: a page whose script broke, or that its
    Content-Security-Policy blocks, must not pass by looking right at first."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    opened.set_default_timeout(PATIENCE_MS)
    problems: list[str] = []
    opened.on("pageerror", lambda exc: problems.append(f"script error: {exc}"))
    opened.on("console", lambda msg: _console(msg, problems))
    yield opened
    context.close()
    assert not problems, problems


def _console(message: Any, problems: list[str]) -> None:
    if message.type == "error" and not message.text.startswith("Failed to load resource"):
        problems.append(f"console: {message.text}")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A real service (uvicorn on loopback, one worker) on a SQLite store, for a module's
    browser tests; tokens as ``tests.server.conftest`` makes them (acme's roles, rival)."""
    url = str(tmp_path_factory.mktemp("site") / "runs.db")
    with open_store(url) as store, serving(store, workers=2) as service:
        yield service


def sign_in(page: Any, site: Served, who: str) -> None:
    """Sign ``page``'s browser context in as token ``who`` (the cookie the login sets)."""
    page.context.add_cookies(
        [
            {
                "name": COOKIE,
                "value": site.tokens[who],
                "url": site.url,
                "httpOnly": True,
                "sameSite": "Strict",
            }
        ]
    )
