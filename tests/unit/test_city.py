"""Real district files in GCJ-02, and the synthetic people living in a city."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from geo.crs import gcj02_to_wgs84
from geo.distance import haversine_m
from simulator.city import area_km2
from simulator.importers import CityFileError, city_from_geojson, load_city_file
from simulator.population import on_shift, shift_at, synth_aeds, synth_responders
from simulator.shenzhen import demo_city

SHENZHEN_FILE = (
    Path(__file__).resolve().parents[2] / "simulator" / "data" / "shenzhen_districts_gcj02.geojson"
)


def test_synthetic_people_follow_population_categories_and_shifts() -> None:
    city = demo_city()
    people = synth_responders(city, 8000, seed=1)
    aeds = synth_aeds(city, 23000, seed=1)
    assert len(people) == 8000 and len(aeds) == 23000
    assert len({p.responder_id for p in people}) == 8000
    assert (city.district_index([p.lat for p in people], [p.lng for p in people]) >= 0).all()
    per_district = Counter(city.district_index([a.lat for a in aeds], [a.lng for a in aeds]).tolist())
    baoan, dapeng = city.names.index("Bao'an"), city.names.index("Dapeng")
    assert per_district[baoan] > 10 * per_district[dapeng]  # 4.5 M people against 0.16 M
    cats = Counter(p.category for p in people)
    assert set(cats) == {"sanitation_worker", "city_inspector", "park_security", "auxiliary_staff"}
    assert {p.mode for p in people} == {"walk", "ebike"}
    assert 0.2 < sum(a.opening_hours == "24/7" for a in aeds) / len(aeds) < 0.4
    assert shift_at(10) == "day" and shift_at(23) == "night" and shift_at(3) == "night"
    day = on_shift(people, 10)
    assert 0.6 < len(day) / len(people) < 0.8
    assert synth_responders(city, 8000, seed=1) == people


def test_real_shenzhen_districts_load_from_gcj02() -> None:
    city = load_city_file(SHENZHEN_FILE, "gcj02", populations={"福田区": 1_553_000})
    assert len(city.districts) == 9
    assert area_km2(city.outline) == pytest.approx(2126, rel=0.03)
    futian = city.districts[city.names.index("福田区")]
    assert futian.population == 1_553_000
    # A vertex of the file, moved to WGS-84, is a vertex of the loaded district (a few hundred metres away).
    raw = load_city_file(SHENZHEN_FILE, "wgs84")
    x, y = raw.districts[0].geometry.geoms[0].exterior.coords[0]
    lat, lng = gcj02_to_wgs84(y, x)
    moved = city.districts[0].geometry.geoms[0].exterior.coords[0]
    assert moved == pytest.approx((lng, lat), abs=1e-9)
    assert 250 < haversine_m(y, x, lat, lng) < 700


def test_a_bad_city_file_names_the_feature_and_the_rule() -> None:
    with pytest.raises(CityFileError, match="FeatureCollection"):
        city_from_geojson({"type": "Feature"})
    feature = {
        "type": "Feature",
        "properties": {"name": "X"},
        "geometry": {"type": "Point", "coordinates": [1, 2]},
    }
    with pytest.raises(CityFileError, match=r"features\.0\.geometry"):
        city_from_geojson({"type": "FeatureCollection", "features": [feature]})
    with pytest.raises(CityFileError, match=r"features\.0\.properties\.name"):
        city_from_geojson({"type": "FeatureCollection", "features": [{**feature, "properties": {}}]})


def test_a_population_for_a_district_the_file_does_not_have_is_refused() -> None:
    square = {
        "type": "Polygon",
        "coordinates": [[[114.0, 22.5], [114.01, 22.5], [114.01, 22.51], [114.0, 22.5]]],
    }
    data = {
        "type": "FeatureCollection",
        "features": [{"type": "Feature", "properties": {"name": "福田区"}, "geometry": square}],
    }
    assert city_from_geojson(data, populations={"福田区": 1_553_000}).population == 1_553_000
    # "Futian" is the same district in English: silently falling back to area would mislead the study
    with pytest.raises(
        CityFileError, match=r"populations: no district named Futian \(the file has: 福田区\)"
    ):
        city_from_geojson(data, populations={"Futian": 1_553_000})
