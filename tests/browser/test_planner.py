"""The planner page against the real coverage endpoints: a heat map of H3 cells coloured by ETA,
the per-district table, and AED placement what-ifs drawn as numbered sites.

The test stores its own city first (the generated demo city's districts through `PUT /v1/city`), so
it never depends on what another test left behind. It runs twice: against a service that answers
these small studies at once, and against one that answers every study with a job to poll (202),
as it does for long ones; the page must show the same results either way.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from simulator.service import city_geojson
from simulator.shenzhen import demo_city
from tests.browser.conftest import console_errors
from tests.browser.test_story import sign_in
from tests.support.people import on_duty_at
from tests.support.server import ServerProcess

pytestmark = [pytest.mark.browser, pytest.mark.integration]


@pytest.fixture(scope="module")
def polling_server(app_env):  # type: ignore[no-untyped-def]
    """The same stores, but no synchronous wait: every study answers 202 and a job to poll."""
    server = ServerProcess(env={**app_env, "DISPATCH_STUDY_SYNC_WAIT_S": "0"}).start()
    yield server
    server.stop()


@pytest.mark.parametrize("answers", ["at once", "as jobs"])
def test_planner_runs_a_coverage_study_and_a_placement_what_if(
    answers, request, live_server, http, admin_headers, token_for, new_context, shot
) -> None:
    server = live_server if answers == "at once" else request.getfixturevalue("polling_server")
    planner = token_for("planner")
    demo = city_geojson(demo_city())
    stored = http.put("/v1/city", json=demo, params={"name": "Demo"}, headers=admin_headers)
    assert stored.status_code == 200, stored.text
    for lat, lng in [
        (22.541, 114.055),
        (22.545, 114.065),
        (22.533, 113.930),
        (22.548, 114.131),
        (22.555, 113.884),
    ]:
        on_duty_at(http, admin_headers, lat, lng, mode="ebike")  # someone to fetch a new AED
    city = http.get("/v1/city", headers=planner)
    assert city.status_code == 200, city.text
    districts = [f["properties"]["name"] for f in city.json()["districts"]["features"]]

    page = new_context().new_page()
    errors = console_errors(page)
    page.goto(f"{server.url}/planner")
    sign_in(page, planner["Authorization"].removeprefix("Bearer "))
    expect(page.locator("#who")).to_be_visible()
    expect(page.locator("#map .leaflet-overlay-pane path")).to_have_count(
        len(districts)
    )  # the district outlines
    shot(page, "city")

    page.get_by_label("H3 resolution").select_option("8")
    page.get_by_role("button", name="Run coverage study").click()
    expect(page.locator("body")).to_have_attribute("data-coverage", "done", timeout=60_000)
    cells = int(page.locator("#status").inner_text().split(": ")[1].split()[0])
    assert cells > 0
    expect(page.locator("#map .leaflet-overlay-pane path")).to_have_count(
        len(districts) + cells
    )  # outlines + heat map
    rows = page.locator("#districts tbody tr th")
    expect(rows).to_have_count(len(districts))
    assert sorted(rows.all_inner_texts()) == sorted(districts)
    expect(page.locator("#summary .shares")).to_contain_text("%")
    shot(page, "coverage-heat-map")

    page.get_by_label("AED ETA").check()  # recolour by the AED's ETA, same cells
    expect(page.locator("#map .leaflet-overlay-pane path")).to_have_count(len(districts) + cells)

    page.get_by_label("Add").select_option("aed")
    page.get_by_label("How many").fill("3")
    page.get_by_role("button", name="Propose sites").click()
    expect(page.locator("#site-table tbody tr")).to_have_count(3, timeout=60_000)
    expect(page.locator(".pin.site")).to_have_count(3)
    shot(page, "aed-placement")

    # The same study with the programme's 8,000 workers on shift instead of the few on duty now.
    live_share = float(page.locator("#summary .shares strong").first.inner_text().split()[0])
    page.get_by_label("Responders").select_option("shift")
    page.get_by_role("button", name="Run coverage study").click()
    expect(page.locator("#status")).to_contain_text("Coverage study done", timeout=60_000)
    shift_share = float(page.locator("#summary .shares strong").first.inner_text().split()[0])
    assert shift_share > 50 > live_share
    shot(page, "coverage-programme-workforce")

    assert errors == []
