"""The console shows where an emergency centre's incident came from (issue 19): the centre, its
tracking id, how exact the place is, and the facts the centre changed on its last update, marked."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import console_errors
from tests.browser.test_story import console_signed_in, remote_spot
from tests.support.eido import case, new_tracking_id
from tests.support.people import bearer

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def test_console_shows_the_centre_and_marks_what_it_changed(
    live_server, http, admin_headers, token_for, new_context, shot
) -> None:
    r = http.post(
        "/v1/tokens",
        json={"role": "cad", "label": "CAD", "agency": "120.console.example"},
        headers=admin_headers,
    )
    cad = bearer(r.json()["token"])
    tracking_id, spot = new_tracking_id(), remote_spot()
    first = http.post("/v1/cad/eido", json=case("point", tracking_id, to=spot), headers=cad)
    assert first.status_code == 201, first.text
    update = case("circle", tracking_id, at_s=30, to=spot)  # the same place, now with a radius
    assert http.post("/v1/cad/eido", json=update, headers=cad).json()["changed"] == [
        "civic",
        "shape",
        "uncertainty_m",
    ]

    page = new_context().new_page()
    errors = console_errors(page)
    console_signed_in(page, live_server.url, token_for("dispatcher")["Authorization"].removeprefix("Bearer "))
    page.locator("#open-list button", has_text="[120.console.example]").first.click()
    origin = page.locator("#incident-origin")
    expect(origin).to_contain_text("From centre 120.console.example")
    expect(origin).to_contain_text(tracking_id)
    expect(origin).to_contain_text(re.compile(r"place within 35 m"))
    marked = origin.locator("mark")
    expect(marked).to_have_text(["address", "location shape", "accuracy"])
    shot(page, "centre-incident")
    assert errors == []
