"""The demo is Shenzhen: its real districts and 74 streets, people on land, teams under the real streets.

Everything here reads the repository's own copy of the data (simulator/data); nothing reads outside it.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import shapely

from simulator.city import area_km2
from simulator.demo import DemoCity, build_demo, responder_rows
from simulator.importers import load_city_file
from simulator.shenzhen import CENSUS_FILE, STREETS_FILE, demo_city, read_census
from simulator.teams import slug

REPO = Path(__file__).resolve().parents[2]
REAL_DISTRICTS = REPO / "simulator" / "data" / "shenzhen_districts_gcj02.geojson"
STREETS_PER_DISTRICT = {
    "福田区": 10, "罗湖区": 10, "南山区": 8, "宝安区": 10, "龙岗区": 11,
    "盐田区": 4, "龙华区": 6, "坪山区": 6, "光明区": 6, "大鹏新区": 3,
}  # fmt: skip
PUBLISHED_LAND_KM2 = 1997  # Shenzhen's land area as the city publishes it


@pytest.fixture(scope="module")
def demo() -> DemoCity:
    return build_demo(0)  # the full programme: 8,000 workers, 23,000 AEDs


def test_the_carried_streets_are_shenzhens_74_with_chinese_and_pinyin_names() -> None:
    features = json.loads(STREETS_FILE.read_text(encoding="utf-8"))["features"]
    props = [f["properties"] for f in features]
    assert Counter(p["district"] for p in props) == STREETS_PER_DISTRICT
    assert all(p["street"].endswith("街道") for p in props)
    assert all(re.fullmatch(r"[A-Z][a-z']+", p["street_en"]) for p in props)
    assert len({(p["district"], p["street_en"]) for p in props}) == 74
    named = {(p["district"], p["street"], p["street_en"]) for p in props}
    assert {("福田区", "南园街道", "Nanyuan"), ("南山区", "蛇口街道", "Shekou")} <= named
    assert ("大鹏新区", "南澳街道", "Nan'ao") in named
    census = read_census(CENSUS_FILE)
    assert {zh for zh, _, _ in census} == set(STREETS_PER_DISTRICT)
    assert dict((en, n) for _, en, n in census)["Bao'an"] == 4_476_000


def test_the_demo_districts_lie_on_the_real_boundaries() -> None:
    """Each demo district lies inside the real one (the repository's GCJ-02 file, converted here) and
    covers most of it; what it leaves out is coast the street file draws as sea."""
    city = demo_city()
    real = load_city_file(REAL_DISTRICTS, "gcj02")
    by_zh = {d.name_zh: d.geometry for d in city.districts}
    by_zh["龙岗区"] = by_zh["龙岗区"].union(by_zh.pop("大鹏新区"))  # Dapeng is inside Longgang's polygon
    assert set(by_zh) == set(real.names)
    for district in real.districts:
        mine = by_zh[district.name]
        both = area_km2(mine.intersection(district.geometry))
        assert both / area_km2(mine) > 0.999, district.name
        assert both / district.area_km2 > 0.82, district.name
    assert area_km2(city.outline) == pytest.approx(PUBLISHED_LAND_KM2, rel=0.03)
    assert area_km2(city.outline.intersection(real.outline)) / area_km2(real.outline) > 0.9


def test_streets_tile_their_district_and_share_its_census_figure_by_area() -> None:
    city = demo_city()
    assert [d.name for d in city.districts] == [en for _, en, _ in read_census(CENSUS_FILE)]
    assert len(city.streets) == 74
    for district in city.districts:
        areas = [s.area_km2 for s in district.streets]
        assert sum(areas) == pytest.approx(district.area_km2, rel=1e-6), district.name  # no overlaps
        assert sum(s.population for s in district.streets) == district.population
        density = [s.population / a for s, a in zip(district.streets, areas, strict=True)]
        assert max(density) / min(density) == pytest.approx(1, abs=0.02)
        assert all(s.population > 0 for s in district.streets)


def test_nobody_and_nothing_is_placed_in_the_sea_or_in_hong_kong(demo: DemoCity) -> None:
    real = load_city_file(REAL_DISTRICTS, "gcj02").outline
    seats = [c for street in demo.communities for c in street]
    for what, lats, lngs in [
        ("workers", [p.lat for p in demo.responders], [p.lng for p in demo.responders]),
        ("AEDs", [a.lat for a in demo.aeds], [a.lng for a in demo.aeds]),
        ("community seats", [c.lat for c in seats], [c.lng for c in seats]),
    ]:
        street = demo.city.street_index(lats, lngs)
        assert (street >= 0).all(), what
        assert shapely.contains_xy(real, lngs, lats).all(), what
    # Kowloon, and the open sea south of Dapeng, are no street of the city.
    assert (demo.city.street_index([22.32, 22.40], [114.17, 114.55]) == -1).all()


def test_every_street_gets_people_and_aeds_in_proportion(demo: DemoCity) -> None:
    city = demo.city
    workers = Counter(city.street_index([p.lat for p in demo.responders], [p.lng for p in demo.responders]))
    aeds = Counter(city.street_index([a.lat for a in demo.aeds], [a.lng for a in demo.aeds]))
    assert set(workers) == set(aeds) == set(range(74))
    population = np.array([s.population for _, s in city.streets], dtype=float)
    expected = 23_000 * population / population.sum()
    got = np.array([aeds[k] for k in range(74)])
    assert np.all(np.abs(got - expected) < 5 * np.sqrt(expected) + 1)  # multinomial: within 5 sigma


def test_the_team_hierarchy_follows_the_real_streets(demo: DemoCity) -> None:
    rows = responder_rows(demo)
    teams = [r.data.team for r in rows]
    assert all(t is not None and len(t.split("/")) == 3 for t in teams)
    real = {
        (slug(d.name), slug(s.name)) for d, s in ((demo.city.districts[i], s) for i, s in demo.city.streets)
    }
    assert {tuple(t.split("/")[:2]) for t in teams if t} == real  # all 74 streets have a team
    where = demo.city.street_index([p.lat for p in demo.responders], [p.lng for p in demo.responders])
    for team, k in zip(teams, where, strict=True):
        d, street = demo.city.streets[k]
        assert team and team.startswith(f"{slug(demo.city.districts[d].name)}/{slug(street.name)}/community-")
    seats = [c.path for street in demo.communities for c in street]
    assert len(seats) == len(set(seats)) and set(teams) <= set(seats)
    assert 500 < len(seats) < 900  # about one community per 25,000 residents


def test_nothing_in_make_run_or_make_test_reads_outside_the_repository() -> None:
    """A fresh clone has no ../shared beside it: only the one-off import script may name it."""
    readers = [REPO / "Makefile", *REPO.glob("scripts/*.sh")]
    for folder in ("tests", "simulator", "dispatch", "core", "responders", "aed_registry", "geo", "cad"):
        readers += (REPO / folder).rglob("*.py")
    offenders = [p for p in readers if re.search(r"\.\./shared|/work/shared", p.read_text(encoding="utf-8"))]
    assert offenders == [p for p in offenders if p.name == "test_shenzhen.py"]
