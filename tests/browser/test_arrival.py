"""The way to the patient on screen (issue 22, item 1): the runner's phone lists its marks as they
happen (the fixes' `auto`, the "picked up the AED" button's `manual`), and the console shows the
incident's timeline per responder with the same marks, times on the city's clock."""

from __future__ import annotations

import random
import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PHONE, console_errors
from tests.browser.test_story import console_signed_in, offset, remote_spot, sign_in
from tests.support.people import bearer, iso, on_duty_at

pytestmark = [pytest.mark.browser, pytest.mark.integration]
CLOCK = re.compile(r"^\d\d:\d\d:\d\d$")


def test_the_phone_and_the_console_show_the_marks_auto_and_manual(
    live_server, http, admin_headers, token_for, new_context, shot
) -> None:
    lat, lng = remote_spot()
    person = on_duty_at(http, admin_headers, *offset(lat, lng, 100, 0), name="Chen Jing")
    a_lat, a_lng = offset(lat, lng, 100, 60)
    body = {"name": "Station AED", "lat": a_lat, "lng": a_lng, "opening_hours": "24/7"}
    assert http.post("/v1/aeds", json=body, headers=admin_headers).status_code == 201
    desk_headers = token_for("dispatcher")
    me = bearer(person["token"])

    def walk(north_m: float, east_m: float = 0.0) -> None:
        f_lat, f_lng = offset(lat, lng, north_m, east_m)
        fix = {"lat": f_lat, "lng": f_lng, "ts": iso(), "accuracy_m": 5}
        r = http.post("/v1/locations", json=fix, headers=me)
        assert r.status_code == 200 and r.json()["stored"] == 1, r.text

    phone = new_context(viewport=PHONE, is_mobile=True, has_touch=True).new_page()
    phone_errors = console_errors(phone)
    phone.goto(f"{live_server.url}/responder")
    sign_in(phone, person["token"])
    expect(phone.locator("#connection")).to_have_text("Online")

    address = f"Arrival test {random.randrange(10**6)}"
    opened = http.post(
        "/v1/incidents",
        json={"lat": lat, "lng": lng, "category": "cardiac_arrest", "address": address},
        headers=desk_headers,
    )
    assert opened.status_code == 201, opened.text
    phone.get_by_role("button", name="Accept — I'm going").click()
    expect(phone.locator("#mission")).to_be_visible()
    picked_up = phone.get_by_role("button", name="Picked up the AED")
    expect(picked_up).to_be_visible()  # a runner: the AED first
    phone.wait_for_timeout(500)  # the worker's table of engaged trips takes the accept in

    marks = phone.locator("#arrival-marks li")
    walk(100, 30)  # out of the 20 m circle, towards the AED
    expect(marks).to_have_count(1)
    expect(marks.nth(0)).to_have_attribute("data-mark", "en_route")
    expect(marks.nth(0)).to_contain_text("On your way")
    expect(marks.nth(0).locator("[data-source]")).to_have_text("auto")
    picked_up.click()
    expect(marks).to_have_count(2)
    expect(marks.nth(1).locator("[data-source]")).to_have_text("manual")
    expect(picked_up).to_be_hidden()
    walk(5)
    expect(marks).to_have_count(3)
    expect(marks.nth(2)).to_contain_text("At the patient")
    expect(phone.locator("#mission-state")).to_contain_text("on scene")
    shot(phone, "runner-marks")
    phone.reload()  # signed in again from the kept token: the marks come back with the incident
    expect(marks).to_have_count(3)
    expect(marks.nth(1)).to_have_attribute("data-mark", "aed_picked_up")
    expect(phone.get_by_role("button", name="Picked up the AED")).to_be_hidden()

    desk = new_context().new_page()
    desk_errors = console_errors(desk)
    console_signed_in(desk, live_server.url, desk_headers["Authorization"].removeprefix("Bearer "))
    desk.locator("#open-list button", has_text=address).click()
    row = desk.locator("#arrival-timeline tbody tr")
    expect(row).to_have_count(1)
    cells = row.locator("td")
    expect(cells.nth(0)).to_have_text("Chen Jing (sanitation worker)")
    expect(cells.nth(1).locator("time")).to_have_text(CLOCK)
    for column, source in ((2, "auto"), (3, "manual"), (4, "auto")):
        expect(cells.nth(column).locator("time")).to_have_text(CLOCK)
        expect(cells.nth(column).locator("[data-source]")).to_have_attribute("data-source", source)
    expect(desk.locator("#events")).to_contain_text("AED picked up")
    desk.locator("#arrival-timeline").scroll_into_view_if_needed()
    shot(desk, "console-timeline")

    # in Chinese, the same marks in the page's words
    desk.get_by_role("button", name="中文").click()  # the page reloads in Chinese, still signed in
    expect(desk.locator("html")).to_have_attribute("lang", "zh-CN")
    desk.locator("#open-list button", has_text=address).click()
    expect(cells.nth(2).locator("[data-source]")).to_have_text("自动")
    expect(cells.nth(3).locator("[data-source]")).to_have_text("手动")
    assert desk_errors == [] and phone_errors == []
