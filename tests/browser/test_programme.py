"""The planner page's Programme section on the scripted week (tests/support/programme_week.py): the
bars and the month trend drawn, the table saying what the API says, another grouping, the CSV
downloaded, and the same section in Chinese."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, expect

from dispatch.web.router import STATIC_DIR
from programme.figures import COLUMNS
from tests.browser.conftest import SCREENSHOTS, console_errors, sign_in_as
from tests.support.people import bearer
from tests.support.programme_week import Played, week_server
from tests.support.server import ServerProcess

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def words(lang: str) -> dict[str, str]:
    return json.loads((STATIC_DIR / "i18n" / f"{lang}.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def week(app_env, store_env, admin_headers) -> Iterator[tuple[ServerProcess, Played, str]]:  # type: ignore[no-untyped-def]
    """Played before any browser starts (the week uses asyncio; Playwright's sync API holds a loop)."""
    with week_server(app_env, store_env, admin_headers) as (server, played):
        token = httpx.post(
            f"{server.url}/v1/tokens", json={"role": "planner", "label": "plan"}, headers=admin_headers
        ).json()["token"]
        yield server, played, token


def open_programme(
    context: BrowserContext, server: ServerProcess, token: str, lang: str
) -> tuple[Page, list[str]]:
    page = context.new_page()
    errors = console_errors(page)
    page.goto(f"{server.url}/planner")
    sign_in_as(page, words(lang), "planner", token)
    expect(page.locator("#programme")).to_have_attribute("data-state", "shown")
    return page, errors


def test_the_programme_section_shows_the_week(week, new_context: Callable[..., BrowserContext], shot) -> None:
    server, _, token = week
    page, errors = open_programme(new_context(), server, token, "en")
    en = words("en")
    expect(page.get_by_role("heading", name=en["programme.heading"])).to_be_visible()
    api = httpx.Client(base_url=server.url, headers=bearer(token), timeout=30)
    # the page's "to" is the last day shown: the API is asked for [from, the day after it)
    last = date.fromisoformat(page.input_value("#programme-to"))
    params = {"from": page.input_value("#programme-from"), "to": (last + timedelta(days=1)).isoformat()}
    report = api.get("/v1/reports/programme", params=params).json()
    months = api.get("/v1/reports/programme", params={**params, "by": "month"}).json()
    rows = page.locator("#programme-rows tbody tr")
    expect(rows).to_have_count(len(report["rows"]))
    west = page.locator('#programme-rows tr[data-key="West"]')
    expect(west.locator("th")).to_have_text("West")
    expect(west.locator('td[data-col="incidents"]')).to_have_text("3")
    expect(west.locator('td[data-col="responder_5min"]')).to_have_text("33.3 %")
    expect(west.locator('td[data-col="median_accept_s"]')).to_have_text("45 s")
    expect(page.locator('#programme-rows tfoot td[data-col="incidents"]')).to_have_text("7")
    # bars: two per row and the total (East's AED share is 0 %: a bar, not "no incidents")
    expect(page.locator("#programme-bars svg rect[data-series]")).to_have_count(2 * (len(report["rows"]) + 1))
    months_with_incidents = sum(1 for row in months["rows"] if row["incidents"])
    expect(page.locator("#programme-trend svg circle")).to_have_count(2 * months_with_incidents)
    shot(page, "by-district")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.locator("#programme").screenshot(path=str(SCREENSHOTS / "programme-en.png"))

    page.select_option("#programme-by", "team")
    page.get_by_role("button", name=en["programme.show"]).click()
    expect(
        page.locator('#programme-rows tr[data-key="shenzhen/west/north/c1"] td[data-col="incidents"]')
    ).to_have_text("2")
    expect(page.locator('#programme-rows tr[data-key="outside"] th')).to_have_text(en["programme.no_team"])

    with page.expect_download() as download:
        page.get_by_role("button", name=en["programme.csv"]).click()
    assert download.value.suggested_filename.startswith("programme-team-")
    lines = list(csv.reader(io.StringIO(Path(download.value.path()).read_text(encoding="utf-8"))))
    by_team = api.get("/v1/reports/programme", params={**params, "by": "team"}).json()
    assert tuple(lines[0]) == COLUMNS and len(lines) == len(by_team["rows"]) + 2
    assert lines[-1][0] == "total" and int(lines[-1][COLUMNS.index("incidents")]) == 7
    assert errors == []


def test_the_programme_section_in_chinese(week, new_context: Callable[..., BrowserContext]) -> None:
    server, _, token = week
    page, errors = open_programme(new_context(locale="zh-CN"), server, token, "zh-CN")
    zh = words("zh-CN")
    expect(page.get_by_role("heading", name=zh["programme.heading"])).to_be_visible()
    expect(page.locator('#programme-rows tr[data-key="West"] th')).to_have_text("西区")
    expect(page.locator('#programme-rows tr[data-key="outside"] th')).to_have_text(zh["programme.outside"])
    expect(page.locator("#programme-rows tfoot th")).to_have_text(zh["programme.total"])
    page.select_option("#programme-by", "street")
    page.get_by_role("button", name=zh["programme.show"]).click()
    expect(page.locator('#programme-rows tr[data-key="West/North"] th')).to_have_text("西区 · 北街道")
    page.locator("#programme").screenshot(path=str(SCREENSHOTS / "programme-zh-CN.png"))
    assert errors == []


def test_a_coordinator_sees_the_programme_beside_the_follow_ups(  # type: ignore[no-untyped-def]
    week, new_context: Callable[..., BrowserContext], admin_headers
) -> None:
    """Coordinators read how the circle performs on their own page (the planner page is for
    planners): the same section, the same figures."""
    server, _, _ = week
    r = httpx.post(
        f"{server.url}/v1/tokens",
        json={"role": "coordinator", "label": "coordinator"},
        headers=admin_headers,
    )
    page = new_context().new_page()
    errors = console_errors(page)
    page.goto(f"{server.url}/coordinator")
    page.get_by_label(words("en")["aftercare.coordinator.token"]).fill(r.json()["token"])
    page.get_by_role("button", name=words("en")["signin.button"], exact=True).click()
    expect(page.locator("#programme")).to_have_attribute("data-state", "shown")
    expect(page.locator('#programme-rows tr[data-key="West"] td[data-col="incidents"]')).to_have_text("3")
    expect(page.locator('#programme-rows tfoot td[data-col="incidents"]')).to_have_text("7")
    assert errors == []
