"""Maps: a real Chinese city's district names are drawn, not replaced by empty boxes."""

from __future__ import annotations

import warnings

from shapely.geometry import MultiPolygon, box

from geo.reach import ReachModel
from simulator.city import City, District
from simulator.coverage import Snapshot, city_grid, study
from simulator.population import SimAed, SimResponder
from simulator.render import coverage_png

LAT, LNG = 22.54, 114.05


def test_chinese_district_names_render_with_a_font_that_has_them() -> None:
    city = City(
        "深圳",
        (
            District("福田区", 1_553_000, MultiPolygon([box(LNG - 0.015, LAT - 0.007, LNG, LAT + 0.007)])),
            District("罗湖区", 1_143_000, MultiPolygon([box(LNG, LAT - 0.007, LNG + 0.015, LAT + 0.007)])),
        ),
    )
    people = [SimResponder("r1", "sanitation_worker", LAT, LNG, "walk", "day")]
    snapshot = Snapshot.of(people, [SimAed("a1", LAT, LNG, "24/7")])
    result = study(city_grid(city, 9), snapshot, ReachModel(), 300.0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        png = coverage_png(city, result)
    missing = [str(w.message) for w in caught if "missing from font" in str(w.message)]
    assert missing == []
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
