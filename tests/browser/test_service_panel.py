"""The responder app's "My service" panel: this month's hours on duty, incidents attended and points,
the figures the service record gives (GET /v1/responders/{id}/service), in English and in Chinese,
and read again after the responder goes on or off duty in the app.

On a server of its own (`stores_of_its_own`): the responder's earlier stretch on duty this month is
a backdated `duty_sessions` row inserted in that database (no API writes the past); the incident
is real (opened by a dispatcher, accepted over HTTP, closed).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.sync_api import expect

from dispatch.web.router import STATIC_DIR
from tests.browser.conftest import PHONE, console_errors, sign_in_as
from tests.browser.test_story import remote_spot
from tests.support.db import fetch, stores_of_its_own
from tests.support.people import bearer, on_duty_at
from tests.support.server import ServerProcess

pytestmark = [pytest.mark.browser, pytest.mark.integration]
WORDS = {
    lang: json.loads((STATIC_DIR / "i18n" / f"{lang}.json").read_text(encoding="utf-8"))
    for lang in ("en", "zh-CN")
}
CITY = ZoneInfo("Asia/Shanghai")


@pytest.fixture(scope="module")
def server(app_env: dict[str, str], store_env: dict[str, str]) -> Iterator[ServerProcess]:
    with (
        stores_of_its_own(store_env["DATABASE_URL"], "servicepanel") as own,
        ServerProcess(env={**app_env, **own}).start() as started,
    ):
        yield started


def sql(server: ServerProcess, query: str, *args: Any) -> None:
    """Run SQL from a thread of its own: Playwright's sync API holds this thread's event loop."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, fetch(server.database_url, query, *args)).result()


def served_responder(server: ServerProcess, api: httpx.Client, admin: dict[str, str]) -> dict[str, Any]:
    """A responder with a stretch on duty earlier this month and one incident accepted just now."""
    lat, lng = remote_spot()
    person = on_duty_at(api, admin, lat + 0.0003, lng, name="Zhou Min")
    now = datetime.now(UTC)
    month = now.astimezone(CITY).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    started = max(month, now - timedelta(hours=5))
    sql(
        server,
        "INSERT INTO duty_sessions (responder_id, started_at, ended_at) VALUES ($1, $2, $3)",
        uuid.UUID(person["id"]),
        started,
        started + (now - started) / 2,
    )
    desk = api.post("/v1/tokens", json={"role": "dispatcher", "label": "panel desk"}, headers=admin).json()
    desk_headers = bearer(desk["token"])
    r = api.post(
        "/v1/incidents", json={"lat": lat, "lng": lng, "category": "cardiac_arrest"}, headers=desk_headers
    )
    assert r.status_code == 201, r.text
    incident = r.json()
    [alert] = incident["alerts"]
    r = api.post(
        f"/v1/alerts/{alert['alert_id']}/answer", json={"response": "accept"}, headers=bearer(person["token"])
    )
    assert r.status_code == 200, r.text
    assert api.post(f"/v1/incidents/{incident['id']}/close", json={}, headers=desk_headers).status_code == 200
    return person


def test_my_service_shows_this_months_hours_incidents_and_points(
    server: ServerProcess, admin_headers: dict[str, str], new_context, shot
) -> None:  # type: ignore[no-untyped-def]
    with httpx.Client(base_url=server.url, timeout=30.0) as api:
        person = served_responder(server, api, admin_headers)
        record = api.get(f"/v1/responders/{person['id']}/service", headers=bearer(person["token"])).json()
    assert record["incidents_attended"] == 1 and record["on_duty_hours"] > 0

    page = new_context(viewport=PHONE, locale="en-US").new_page()
    errors = console_errors(page)
    page.goto(f"{server.url}/responder")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    sign_in_as(page, WORDS["en"], "responder", person["token"])
    panel = page.locator("#service-card")
    expect(panel.get_by_role("heading", name=WORDS["en"]["service.heading"])).to_be_visible()
    expect(panel.locator("#service-hours")).to_have_text(f"{record['on_duty_hours']:.1f} h")
    expect(panel.locator("#service-incidents")).to_have_text("1")
    points = record["points"]
    expect(panel.locator("#service-points")).to_have_text(
        f"{points:.0f}" if points == int(points) else f"{points:.1f}"
    )
    expect(panel).to_contain_text(WORDS["en"]["service.points_label"])
    shot(page, "my-service-en")

    # going off duty in the app reads the record again (the open stretch stops growing)
    with page.expect_response(lambda r: r.url.endswith(f"/v1/responders/{person['id']}/service")) as read:
        page.get_by_role("button", name=WORDS["en"]["duty.go_off"]).click()
    after = read.value.json()
    expect(page.get_by_role("button", name=WORDS["en"]["duty.go_on"])).to_be_visible()
    expect(panel.locator("#service-hours")).to_have_text(f"{after['on_duty_hours']:.1f} h")

    # the same panel in Chinese
    page.get_by_role("button", name="中文").click()
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    words = WORDS["zh-CN"]
    expect(panel.get_by_role("heading", name=words["service.heading"])).to_be_visible()
    hours = words["service.hours"].replace("{n}", f"{after['on_duty_hours']:.1f}")
    expect(panel.locator("#service-hours")).to_have_text(hours)
    expect(panel).to_contain_text(words["service.incidents_label"])
    shot(page, "my-service-zh")
    assert errors == []
