"""The console's map orients without tiles: Shenzhen's land (its districts, filled) on a sea-coloured
background, district names at city zoom, street (街道) names from zoom 12 on in the page's language,
and a selected incident's reach as two circles (on foot, by e-bike) sized by the service's reach model.

The demo city with its streets is stored in the test database directly (`PUT /v1/city` takes districts
alone). Screenshots per language in `test-artifacts/screenshots/`: `console-map-city-<lang>.png` (the
whole city), `console-map-reach-<lang>.png` (an incident at zoom 16), `console-map-<lang>.png` (street
names at zoom 12).
"""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from playwright.sync_api import Page, expect
from shapely.geometry import Point
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from core.config import Settings
from dispatch.web.router import STATIC_DIR
from geo.reach import ReachModel
from simulator.city import City
from simulator.service import save_city
from simulator.shenzhen import demo_city
from tests.browser.conftest import SCREENSHOTS, console_errors, sign_in_as

pytestmark = [pytest.mark.browser, pytest.mark.integration]

LAND = "rgb(244, 241, 232)"  # lib/map.js LOOK.bare.land.fillColor
SEA = "rgb(185, 211, 228)"  # common.css .map.no-tiles
# Lianhua (莲花街道), Futian: inside Shenzhen and ~2 km from the planner test's responders (shared stores)
INCIDENT = (22.5600, 114.0500)
REACH_S = 120  # a short reach: the incident alerts nobody another test placed nearby


@pytest.fixture(scope="module")
def shenzhen(store_env: dict[str, str]) -> City:
    """Store the demo city, streets and all, as `dispatch sim load-demo` does (without its people).

    In a thread of its own: Playwright's sync API keeps an event loop running in this one."""
    city = demo_city()

    async def store() -> None:
        engine = create_async_engine(store_env["DATABASE_URL"])
        try:
            async with AsyncSession(engine) as session:
                await save_city(session, city)
                await session.commit()
        finally:
            await engine.dispose()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, store()).result()
    return city


def settle(page: Page) -> None:
    expect(page.locator("#map .leaflet-zoom-anim")).to_have_count(0)
    page.wait_for_timeout(300)  # Leaflet's fade of the panes after a zoom (CSS, no event)


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_console_map_without_tiles_shows_land_names_and_the_incidents_reach(
    live_server, http, token_for, new_context, shot, shenzhen: City, lang: str
) -> None:
    words = json.loads((STATIC_DIR / "i18n" / f"{lang}.json").read_text(encoding="utf-8"))

    def name(place) -> str:  # type: ignore[no-untyped-def]
        return place.name_zh if lang == "zh-CN" else place.name

    page = new_context(locale=lang).new_page()
    errors = console_errors(page)
    page.goto(live_server.url + "/")
    token = token_for("dispatcher")["Authorization"].removeprefix("Bearer ")
    sign_in_as(page, words, "console", token)

    # the whole city: land filled over the sea, one outline per district, district names, no street names
    districts = page.locator("#map path.district")
    expect(districts).to_have_count(len(shenzhen.districts))
    expect(page.locator("#map path.street")).to_have_count(len(shenzhen.streets))
    settle(page)
    land = page.locator("#map path.land")
    expect(land).to_have_count(len(shenzhen.districts))
    assert land.first.evaluate("p => getComputedStyle(p).fill") == LAND
    assert land.first.evaluate("p => getComputedStyle(p).fillOpacity") == "1"
    assert districts.first.evaluate("p => getComputedStyle(p).fill") == "none"  # outlines over the land
    # the land lies under every overlay (a planner's heat map sent to the back still covers it)
    z_index = "p => Number(getComputedStyle(p).zIndex)"
    assert page.locator("#map .leaflet-land-pane").evaluate(z_index) < page.locator(
        "#map .leaflet-overlay-pane"
    ).evaluate(z_index)
    assert page.locator("#map").evaluate("m => getComputedStyle(m).backgroundColor") == SEA
    district_labels = page.locator("#map .district-label")
    expect(district_labels).to_have_count(len(shenzhen.districts))
    assert sorted(district_labels.all_inner_texts()) == sorted(name(d) for d in shenzhen.districts)
    expect(page.locator("#map .street-label")).to_have_count(0)
    expect(page.locator("#map .foreign-label")).to_have_text(words["map.hong_kong"])
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"console-map-city-{lang}.png"))

    # an incident: the console goes to street zoom, where the street names replace the district names
    page.get_by_label(words["field.lat"]).fill(f"{INCIDENT[0]:.6f}")
    page.get_by_label(words["field.lng"]).fill(f"{INCIDENT[1]:.6f}")
    page.get_by_label(words["field.reach_s"]).fill(str(REACH_S))
    page.get_by_role("button", name=words["console.open_incident"], exact=True).click()
    expect(page.locator("#close-incident")).to_be_enabled()
    walk, ebike = page.locator("#map path.reach-walk"), page.locator("#map path.reach-ebike")
    expect(walk).to_have_count(1)
    expect(ebike).to_have_count(1)
    settle(page)
    expect(page.locator("#map .district-label")).to_have_count(0)
    street_here = next(s for _, s in shenzhen.streets if s.geometry.contains(Point(INCIDENT[1], INCIDENT[0])))
    expect(page.locator("#map .street-label", has_text=name(street_here))).to_have_count(1)
    assert page.locator("#map .street-label").count() == len(shenzhen.streets)
    # the circles are the reach model's distances on foot and by e-bike (pixels at this zoom: compare the two)
    model = ReachModel.from_settings(Settings())
    expected = model.max_distance_m(REACH_S, "ebike") / model.max_distance_m(REACH_S, "walk")
    drawn = ebike.bounding_box()["width"] / walk.bounding_box()["width"]  # type: ignore[index]
    assert drawn == pytest.approx(expected, rel=0.03)
    page.screenshot(path=str(SCREENSHOTS / f"console-map-reach-{lang}.png"))
    walk_m = words["unit.m"].format(n=round(model.max_distance_m(REACH_S, "walk")))
    expect(page.locator("#incident-reach")).to_contain_text(walk_m)

    # zoom out to 12 (street zoom's lower edge): street names stay, district names stay away
    for _ in range(4):  # the console opened the incident at zoom 16
        page.get_by_role("button", name=words["map.zoom_out"]).click()
        settle(page)
    expect(page.locator("#map .street-label", has_text=name(street_here))).to_have_count(1)
    expect(page.locator("#map .district-label")).to_have_count(0)
    page.screenshot(path=str(SCREENSHOTS / f"console-map-{lang}.png"))
    shot(page, f"street-zoom-{lang}")
    page.get_by_role("button", name=words["map.zoom_out"]).click()  # 11: the districts' names again
    settle(page)
    expect(page.locator("#map .district-label")).to_have_count(len(shenzhen.districts))
    expect(page.locator("#map .street-label")).to_have_count(0)

    page.get_by_role("button", name=words["console.close_incident"], exact=True).click()
    expect(page.locator("#close-incident")).to_be_disabled()
    assert errors == []


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_the_planners_tables_name_districts_and_streets_in_the_pages_language(
    live_server, token_for, new_context, shot, shenzhen: City, lang: str
) -> None:
    words = json.loads((STATIC_DIR / "i18n" / f"{lang}.json").read_text(encoding="utf-8"))
    page = new_context(locale=lang).new_page()
    errors = console_errors(page)
    page.goto(live_server.url + "/planner")
    token = token_for("planner")["Authorization"].removeprefix("Bearer ")
    sign_in_as(page, words, "planner", token)
    page.locator("#resolution").select_option("7")
    page.locator("#run-coverage").click()
    districts = page.locator("#districts tbody th")
    expect(districts).to_have_count(len(shenzhen.districts), timeout=120_000)
    expected = sorted(d.name_zh if lang == "zh-CN" else d.name for d in shenzhen.districts)
    assert sorted(districts.all_inner_texts()) == expected
    page.locator("#streets-shares summary").click()
    streets = page.locator("#streets tbody th")
    everyone = [s for d in shenzhen.districts for s in d.streets]
    expect(streets).to_have_count(len(everyone))
    names = sorted(s.name_zh if lang == "zh-CN" else s.name for s in everyone)
    assert sorted(streets.all_inner_texts()) == names
    shot(page, f"planner-streets-{lang}")
    assert not errors, errors
