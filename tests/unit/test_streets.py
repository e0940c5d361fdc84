"""The pure parts under the street level, on tiny hand-made cities: sharing a census figure out,
building districts from streets, placing people inside streets, naming teams, per-street tables."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from shapely.geometry import box, mapping

from geo.reach import ReachModel
from simulator.city import City, District, Street, share_out
from simulator.coverage import Snapshot, city_grid, study, summarise
from simulator.policy_report import markdown
from simulator.policy_run import PolicyRow
from simulator.population import PlaceSampler, places_of, synth_aeds, synth_responders
from simulator.shenzhen import city_of
from simulator.teams import Community, communities, slug, team_paths

LAT, LNG = 22.54, 114.05
NORTH = box(LNG, LAT, LNG + 0.02, LAT + 0.01)  # about 2 km x 1.1 km each
SOUTH = box(LNG, LAT - 0.01, LNG + 0.02, LAT)
EAST = box(LNG + 0.02, LAT - 0.01, LNG + 0.04, LAT + 0.01)


def street_feature(district: str, zh: str, en: str, geometry: object) -> dict:
    props = {"district": district, "street": zh, "street_en": en}
    return {"type": "Feature", "properties": props, "geometry": mapping(geometry)}


def tiny_city() -> City:
    """'West' has two streets of 15,000 people each; 'East' is known only as a district."""
    west = District(
        "West",
        30_000,
        box(LNG, LAT - 0.01, LNG + 0.02, LAT + 0.01),
        "西区",
        (Street("North", 15_000, NORTH, "北街道"), Street("South", 15_000, SOUTH, "南街道")),
    )
    return City("tiny", (west, District("East", 10_000, EAST)))


@given(
    st.integers(0, 10**8),
    st.lists(st.floats(0, 1e6, allow_nan=False), min_size=1, max_size=30).filter(lambda w: sum(w) > 0),
)
def test_share_out_keeps_the_total_and_stays_within_one_of_the_exact_share(
    total: int, weights: list[float]
) -> None:
    shares = share_out(total, weights)
    assert sum(shares) == total
    exact = total * np.array(weights) / sum(weights)
    assert np.all(np.abs(np.array(shares) - exact) < 1)
    assert all(s == 0 for s, w in zip(shares, weights, strict=True) if w == 0)


def test_share_out_refuses_weights_that_share_nothing() -> None:
    with pytest.raises(ValueError, match="weights"):
        share_out(10, [0.0, 0.0])


def test_a_city_of_streets_unions_them_into_districts_and_spreads_people_by_area() -> None:
    streets = [
        street_feature("西区", "北街道", "North", NORTH),
        street_feature("西区", "南街道", "South", box(LNG, LAT - 0.02, LNG + 0.02, LAT)),  # twice the area
        street_feature("东区", "东街道", "East", EAST),
    ]
    city = city_of(streets, [("西区", "West", 3_001), ("东区", "East", 500)])
    west, east = city.districts
    assert (west.name, west.name_zh, east.name) == ("West", "西区", "East")
    assert [(s.name, s.name_zh, s.population) for s in west.streets] == [
        ("North", "北街道", 1_000),
        ("South", "南街道", 2_001),
    ]
    assert west.geometry.equals(box(LNG, LAT - 0.02, LNG + 0.02, LAT + 0.01))
    assert east.streets[0].population == 500
    with pytest.raises(ValueError, match="census: district 南区 has no streets"):
        city_of(streets, [("西区", "West", 1), ("东区", "East", 1), ("南区", "South", 1)])
    with pytest.raises(ValueError, match=r"streets: districts \['东区'\] have no census figure"):
        city_of(streets, [("西区", "West", 1)])


def test_people_are_placed_in_streets_where_known_and_in_the_district_elsewhere() -> None:
    city = tiny_city()
    assert [p.name for p in places_of(city)] == ["North", "South", "East"]
    l_shape = NORTH.union(box(LNG, LAT - 0.01, LNG + 0.002, LAT))
    lat, lng = PlaceSampler(Street("L", 1, l_shape)).uniform(2000, np.random.default_rng(1))
    assert city.street_index(lat, lng).tolist().count(-1) == 0  # inside the L: north, or its foot in south
    people = synth_responders(city, 4000, seed=3)
    aeds = synth_aeds(city, 4000, seed=3)
    for lats, lngs in (
        ([p.lat for p in people], [p.lng for p in people]),
        ([a.lat for a in aeds], [a.lng for a in aeds]),
    ):
        street = city.street_index(lats, lngs)
        district = city.district_index(lats, lngs)
        assert (district >= 0).all()
        assert ((street >= 0) == (district == 0)).all()  # West's people are in a street, East's are not
        north, south, east = (street == 0).sum(), (street == 1).sum(), (district == 1).sum()
        assert abs(north - south) < 0.1 * (north + south)  # 15,000 each
        assert 0.6 < (north + south) / east / 3 < 1.4  # 30,000 against 10,000


def test_teams_are_the_nearest_community_of_the_street_or_the_district_without_streets() -> None:
    city = tiny_city()
    north = [
        Community("west/north/community-1", LAT + 0.005, LNG + 0.002),
        Community("west/north/community-2", LAT + 0.005, LNG + 0.018),
    ]
    seats = [north, [Community("west/south/community-1", LAT - 0.005, LNG + 0.01)]]
    lats = [LAT + 0.004, LAT + 0.006, LAT - 0.009, LAT, LAT + 0.5]
    lngs = [LNG + 0.003, LNG + 0.019, LNG + 0.001, LNG + 0.03, LNG]
    assert team_paths(city, seats, lats, lngs) == [
        "west/north/community-1",
        "west/north/community-2",
        "west/south/community-1",  # far from its seat, but in its street
        "east",
        None,  # outside the city
    ]
    drawn = communities(city, seed=4)
    assert [len(s) for s in drawn] == [1, 1]  # 15,000 residents: one community each
    assert city.street_index(
        [c.lat for s in drawn for c in s], [c.lng for s in drawn for c in s]
    ).tolist() == [0, 1]
    assert communities(city, seed=4) == drawn
    assert slug("Bao'an") == "bao-an" and slug("Nan'ao") == "nan-ao"


def test_coverage_reports_each_street_and_the_streets_add_up_to_their_district() -> None:
    city = tiny_city()
    result = study(city_grid(city, 10), Snapshot.of([], []), ReachModel(), 300.0)
    grid = result.grid
    assert set(grid.street[grid.district == 0]) == {0, 1} and set(grid.street[grid.district == 1]) == {-1}
    summary = summarise(result, city)
    assert [(s["name"], s["name_zh"], s["district"]) for s in summary["streets"]] == [
        ("North", "北街道", "West"),
        ("South", "南街道", "West"),
    ]
    west = summary["districts"][0]
    assert west["name_zh"] == "西区"
    assert sum(s["population"] for s in summary["streets"]) == pytest.approx(west["population"], abs=2)
    assert sum(s["cells"] for s in summary["streets"]) == west["cells"]


def test_the_policy_page_has_a_street_table_only_when_the_city_has_streets() -> None:
    def row(district: str, street: str | None) -> PolicyRow:
        return PolicyRow("ours", "Ours", district, 10, 0.5, 0.4, 0.6, 3.0, 3.2, 0.1, street)

    rows = [row("whole city", None), row("West", None), row("West", "North"), row("West", "South")]
    page = markdown(rows, {}, "cmd", {}, {})
    street_part = page.split("## Per street")[1]
    assert "| West | North | Ours | 10 | 50.0 %" in street_part and "| West | South | Ours |" in street_part
    assert "| West | North |" not in page.split("## Per street")[0]
    assert "## Per street" not in markdown(rows[:2], {}, "cmd", {}, {})
