"""Browser fixtures: Debian's Chromium driven headless by Playwright's sync API, screenshots kept.

Playwright's own browser download is never used (`playwright install` needs the internet); the
system Chromium is launched instead. Screenshots go to `test-artifacts/browser/` so a reviewer can
see every step of the story.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from tests.support.server import ROOT

CHROMIUM = os.environ.get("DISPATCH_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
# one picture per page and language under a stable name (for the README and a reviewer's quick look)
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
PHONE = {"width": 390, "height": 844}
DESK = {"width": 1366, "height": 860}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One Chromium per test module. Playwright's sync API keeps its own event loop marked as running
    while it is open, so it must be closed before any async test of the same pytest run starts."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: the test set-up installs Debian's chromium package")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def new_context(browser: Browser) -> Iterator[Callable[..., BrowserContext]]:
    """Open isolated browser contexts (separate storage: a dispatcher and a phone); closed after."""
    opened: list[BrowserContext] = []

    def open_context(viewport: dict[str, int] = DESK, **options: object) -> BrowserContext:
        # the pages take their language from the browser: English unless a test asks for another
        options.setdefault("locale", "en-US")
        context = browser.new_context(viewport=viewport, **options)  # type: ignore[arg-type]
        context.set_default_timeout(15_000)
        opened.append(context)
        return context

    yield open_context
    for context in opened:
        context.close()


@pytest.fixture
def shot(request: pytest.FixtureRequest) -> Callable[[Page, str], Path]:
    """Save a full-page screenshot named after the test and the step."""
    folder = ARTIFACTS / request.node.name
    folder.mkdir(parents=True, exist_ok=True)
    counter = iter(range(1, 100))

    def take(page: Page, step: str) -> Path:
        path = folder / f"{next(counter):02d}-{step}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


def console_errors(page: Page) -> list[str]:
    """Collect JavaScript errors of a page (a broken module would otherwise fail silently), and
    anything the Content-Security-Policy blocked (a console error, not an exception)."""
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on(
        "console",
        lambda msg: (
            errors.append(msg.text) if msg.type == "error" and "Content Security Policy" in msg.text else None
        ),
    )
    return errors


def sign_in_as(page: Page, words: dict[str, str], screen: str, token: str) -> None:
    """Sign in on a page's own form, the label and button in the page's language (`words`: a catalogue)."""
    page.get_by_label(words[f"{screen}.token"]).fill(token)
    page.get_by_role("button", name=words["signin.button"], exact=True).click()
    expect(page.locator("#who")).to_be_visible()
