"""The planner page against the real coverage endpoints: a heat map of H3 cells coloured by ETA,
the per-district table, and AED placement what-ifs drawn as numbered sites.

PENDING: `GET /v1/city`, `POST /v1/coverage` and `POST /v1/coverage/placement` (simulator) do not
exist yet, so this file is deliberately not named `test_*.py` (pytest does not collect it). Rename it
to `test_planner.py` once they land; it is written against the contract in the team brief.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import console_errors
from tests.browser.test_story import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def test_planner_runs_a_coverage_study_and_a_placement_what_if(
    live_server, http, token_for, new_context, shot
) -> None:
    planner = token_for("planner")
    city = http.get("/v1/city", headers=planner)
    assert city.status_code == 200, city.text
    districts = [f["properties"]["name"] for f in city.json()["districts"]["features"]]

    page = new_context().new_page()
    errors = console_errors(page)
    page.goto(f"{live_server.url}/planner")
    sign_in(page, planner["Authorization"].removeprefix("Bearer "))
    expect(page.locator("#who")).to_be_visible()
    expect(page.locator("#map path")).to_have_count(len(districts))  # the district outlines
    shot(page, "city")

    page.get_by_label("H3 resolution").select_option("8")
    page.get_by_role("button", name="Run coverage study").click()
    expect(page.locator("body")).to_have_attribute("data-coverage", "done", timeout=60_000)
    cells = int(page.locator("#status").inner_text().split(": ")[1].split()[0])
    assert cells > 0
    expect(page.locator("#map path")).to_have_count(len(districts) + cells)  # outlines + heat map
    rows = page.locator("#districts tbody tr th")
    expect(rows).to_have_count(len(districts))
    assert sorted(rows.all_inner_texts()) == sorted(districts)
    expect(page.locator("#summary .shares")).to_contain_text("%")
    shot(page, "coverage-heat-map")

    page.get_by_label("AED ETA").check()  # recolour by the AED's ETA, same cells
    expect(page.locator("#map path")).to_have_count(len(districts) + cells)

    page.get_by_label("Add").select_option("aed")
    page.get_by_label("How many").fill("3")
    page.get_by_role("button", name="Propose sites").click()
    expect(page.locator("#site-table tbody tr")).to_have_count(3, timeout=60_000)
    expect(page.locator(".pin.site")).to_have_count(3)
    shot(page, "aed-placement")

    assert errors == []
