"""The whole story in two browsers: a dispatcher opens an incident, a responder's phone rings, the
responder accepts, and the dispatcher sees the acceptance (and the arrival, and the close) live.

Everything is seeded through the real API; the pages talk to the real server (PostGIS, Redis,
websockets). Each step leaves a screenshot in `test-artifacts/browser/<test>/`.
"""

from __future__ import annotations

import math
import random
import re
import time

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import PHONE, console_errors
from tests.support.people import register

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def remote_spot() -> tuple[float, float]:
    """A place far from other tests' responders (the database and Redis are shared)."""
    return random.uniform(-40, 40), random.uniform(-160, 160)


def offset(lat: float, lng: float, north_m: float, east_m: float) -> tuple[float, float]:
    return lat + north_m / 111_195.0, lng + east_m / (111_195.0 * math.cos(math.radians(lat)))


def sign_in(page: Page, token: str) -> None:
    page.get_by_label(re.compile("token", re.I)).fill(token)
    page.get_by_role("button", name="Sign in").click()


def console_signed_in(page: Page, url: str, token: str) -> None:
    """The dispatch console open, signed in with `token`, its live feed on."""
    page.goto(url + "/")
    sign_in(page, token)
    expect(page.locator("#live")).to_have_text("Live feed: on")


def place_incident(desk: Page, lat: float, lng: float) -> None:
    """Type the incident's position into the console's form (WGS-84 on a map without tiles)."""
    desk.get_by_label("Latitude").fill(f"{lat:.7f}")
    desk.get_by_label("Longitude").fill(f"{lng:.7f}")


def stand_at(phone: Page, lat: float, lng: float) -> None:
    """Put a signed-in phone at a point with the app's simulated position (no GPS in a test)."""
    phone.get_by_text("Simulated position (demos)").click()
    phone.get_by_label("Latitude").fill(f"{lat:.7f}")
    phone.get_by_label("Longitude").fill(f"{lng:.7f}")
    phone.get_by_role("button", name="Use this position").click()


def wait_dispatchable(http: httpx.Client, admin: dict[str, str], responder_id: str) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        body = http.get(f"/v1/responders/{responder_id}", headers=admin).json()
        if body["dispatchable"]:
            return
        time.sleep(0.2)
    raise AssertionError(f"responder never became dispatchable: {body['not_dispatchable_because']}")


def test_dispatcher_alerts_responder_who_accepts_live(
    live_server, http, admin_headers, token_for, new_context, shot
) -> None:
    lat, lng = remote_spot()
    person = register(http, admin_headers, name="Zhang Min", category="park_security", mode="walk")
    a_lat, a_lng = offset(lat, lng, 60, 40)
    aed_name = f"Park gate AED {random.randrange(10**6)}"
    aed = http.post(
        "/v1/aeds",
        json={"name": aed_name, "lat": a_lat, "lng": a_lng, "opening_hours": "24/7",
              "location_detail": "inside the guard house"},
        headers=admin_headers,
    )  # fmt: skip
    assert aed.status_code == 201, aed.text
    desk_token = token_for("dispatcher")["Authorization"].removeprefix("Bearer ")

    # --- the responder's phone: sign in, go on duty, share a (simulated) position -------------
    phone = new_context(viewport=PHONE, is_mobile=True, has_touch=True).new_page()
    phone_errors = console_errors(phone)
    phone.goto(f"{live_server.url}/responder")
    sign_in(phone, person["token"])
    expect(phone.locator("#connection")).to_have_text("Online")
    expect(phone.locator("#who")).to_contain_text("Zhang Min")
    phone.get_by_role("button", name="Go on duty").click()
    expect(phone.get_by_role("button", name="Go off duty")).to_have_attribute("aria-pressed", "true")
    stand_at(phone, *offset(lat, lng, -120, 80))
    expect(phone.locator("#position")).to_contain_text("Sent")
    wait_dispatchable(http, admin_headers, person["id"])
    expect(phone.locator("#dispatchable")).to_have_text("You can receive alerts.")
    shot(phone, "responder-on-duty")

    # --- the dispatcher: sign in, place the incident, open it ----------------------------------
    desk = new_context().new_page()
    desk_errors = console_errors(desk)
    console_signed_in(desk, live_server.url, desk_token)
    desk.locator("#map").click(position={"x": 300, "y": 300})
    expect(desk.get_by_label("Latitude")).not_to_have_value("")  # a click on the map places the incident
    place_incident(desk, lat, lng)
    desk.get_by_label("Category").select_option("cardiac_arrest")
    desk.get_by_label("Address").fill("North gate of the park, by the fountain")
    desk.get_by_role("button", name="Open incident").click()
    alert_row = desk.locator("#alerts tr", has_text="Zhang Min")
    expect(alert_row).to_be_visible()
    expect(desk.locator("#incident-summary")).to_contain_text("North gate of the park")
    role_cell = alert_row.locator("td").nth(1)
    expect(role_cell).to_have_text(re.compile("^not decided"))  # roles are decided at the accept
    expect(desk.locator("#open-list")).to_contain_text("North gate of the park")
    expect(desk.locator("#incident-aeds")).to_contain_text(aed_name)
    # the map moved to the incident: the responder (by category) and the open AED are drawn there
    expect(desk.locator(f'.leaflet-marker-icon[title^="park security {person["id"][:8]}"]')).to_have_count(1)
    aed_pin = desk.locator(f'.leaflet-marker-icon[title="AED {aed_name}"]')
    expect(aed_pin).to_have_class(re.compile("aed-open"))
    shot(desk, "dispatcher-incident-opened")

    # --- the phone rings: role, distance, ETA; accept -----------------------------------------
    expect(phone.locator("#alert")).to_be_visible()
    expect(phone.locator("#alert-title")).to_contain_text("cardiac arrest")
    expect(phone.locator("#alert-facts")).to_contain_text("min")
    assert "North gate" not in phone.locator("#alert").inner_text()  # the address only after accepting
    shot(phone, "responder-alert")
    phone.get_by_role("button", name="Accept — I'm going").click()
    expect(phone.locator("#mission")).to_be_visible()
    expect(phone.locator("#mission-where")).to_have_text("North gate of the park, by the fountain")
    expect(phone.locator("#mission-map path.leaflet-interactive")).to_have_count(1)  # the line to follow
    expect(role_cell).to_have_text(re.compile("^(CPR|fetch AED)$"))
    fetching = role_cell.inner_text() == "fetch AED"
    expect(phone.locator("#mission-aed")).to_have_text(
        f"AED: {aed_name} — inside the guard house" if fetching else ""
    )
    # you, the patient and, when fetching, the AED on the way
    expect(phone.locator("#mission-map .leaflet-marker-icon")).to_have_count(3 if fetching else 2)
    shot(phone, "responder-accepted")

    # --- the dispatcher sees it live ----------------------------------------------------------
    expect(alert_row.locator("td").nth(4)).to_have_text("accepted")
    expect(desk.locator("#events")).to_contain_text("accepted")
    shot(desk, "dispatcher-sees-acceptance")

    phone.get_by_role("button", name="En route").click()
    phone.get_by_role("button", name="On scene").click()
    expect(alert_row.locator("td").nth(4)).to_have_text("on scene")
    shot(desk, "dispatcher-sees-arrival")

    desk.get_by_role("button", name="Close incident").click()
    expect(desk.locator("#incident-summary")).to_contain_text("— closed")
    expect(desk.get_by_role("button", name="Close incident")).to_be_disabled()
    expect(phone.locator("#status")).to_contain_text("Stand down")
    expect(phone.locator("#mission")).to_be_hidden()
    shot(phone, "responder-stood-down")
    assert desk_errors == [] and phone_errors == []
