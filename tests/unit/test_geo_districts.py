"""The real Shenzhen district file (GCJ-02) converts to WGS-84 with every district valid."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from shapely.geometry import shape

from geo.crs import Crs, transform_geojson
from geo.distance import haversine_m

DISTRICTS = Path(__file__).resolve().parents[2] / "simulator" / "data" / "shenzhen_districts_gcj02.geojson"


@pytest.fixture(scope="module")
def features() -> list[dict]:
    return json.loads(DISTRICTS.read_text())["features"]


def test_nine_districts_valid_after_conversion(features: list[dict]) -> None:
    assert len(features) == 9
    total_km2 = 0.0
    for f in features:
        before = shape(f["geometry"])
        after = shape(transform_geojson(f["geometry"], Crs.gcj02, Crs.wgs84))
        assert after.is_valid, f["properties"]["name"]
        shift = haversine_m(before.centroid.y, before.centroid.x, after.centroid.y, after.centroid.x)
        assert 250 < shift < 650, (f["properties"]["name"], shift)
        total_km2 += after.area * (111.32**2) * 0.92  # cos(22.6°) ≈ 0.92: rough km²
    assert 1700 < total_km2 < 2500
