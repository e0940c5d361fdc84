"""Import parsing, in-file de-duplication and the merge onto stored rows: pure, no database."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from aed_registry.availability import AedSpot, HoursPolicy, pick_available
from aed_registry.importers import (
    AedRecord,
    ColumnMapping,
    ImportFileError,
    dedupe_records,
    merge_record,
    parse_csv,
    parse_geojson,
)
from aed_registry.store import AedRow
from core.config import Settings
from geo.crs import Crs, gcj02_to_wgs84
from geo.distance import haversine_m


def test_csv_default_columns_line_numbers_and_quoted_newlines() -> None:
    data = (
        'ref,name,lat,lng,opening_hours\nA1,"Lobby\nwest",22.5,114.0,24/7\n'
        "A2,Gate,abc,114.0,24/7\nA3,Hall,22.6,114.1,\n"
    )
    report = parse_csv(data)
    assert report.rows == 3
    assert [(r.external_id, r.line) for r in report.records] == [("A1", 2), ("A3", 5)]
    assert [(e.line, e.field) for e in report.errors] == [(4, "lat")]
    assert report.records[0].name == "Lobby\nwest"
    assert report.records[1].opening_hours is None  # empty cell = not given


def test_csv_mapping_crs_and_semicolon_delimiter() -> None:
    data = "Code;Site;Y;X\nB1;Station;22.538008;114.064525\n"
    mapping = ColumnMapping.parse(["external_id:Code", "name:site", "lat:Y", "lng:X"])
    report = parse_csv(data, crs=Crs.gcj02, mapping=mapping, delimiter=";")
    record = report.records[0]
    assert (record.external_id, record.name) == ("B1", "Station")
    want = gcj02_to_wgs84(22.538008, 114.064525)
    assert haversine_m(record.lat, record.lng, *want) < 0.01


@pytest.mark.parametrize(
    ("items", "header", "message"),
    [(["name"], "lat,lng", "map: 'name'"), (["size:Big"], "lat,lng", "unknown field"),
     (["name:Nom"], "name,lat,lng", "column 'Nom'"), ([], "name,a,b", "lat_col")],
)  # fmt: skip
def test_mapping_errors_name_the_parameter(items: list[str], header: str, message: str) -> None:
    with pytest.raises(ImportFileError, match=message):
        parse_csv(header + "\n", mapping=ColumnMapping.parse(items))


def test_geojson_requires_a_feature_collection() -> None:
    with pytest.raises(ImportFileError, match="FeatureCollection"):
        parse_geojson('{"type": "Feature"}')
    with pytest.raises(ImportFileError, match="not JSON"):
        parse_geojson("{nope")


def test_geojson_osm_access_values_and_bad_features() -> None:
    doc = """{"type": "FeatureCollection", "features": [
      {"type": "Feature", "geometry": {"type": "Point", "coordinates": [114.0, 22.5]},
       "properties": {"access": "permissive", "check_date": "2025-06-01"}},
      {"type": "Feature", "geometry": {"type": "Point", "coordinates": [114.0, 22.5]},
       "properties": {"access": "members only"}},
      "not a feature",
      {"type": "Feature", "geometry": {"type": "Point", "coordinates": [114.0]}, "properties": {}}]}"""
    report = parse_geojson(doc)
    assert report.records[0].access == "public" and report.records[0].name is None
    assert report.records[0].last_checked == datetime(2025, 6, 1, tzinfo=UTC)
    assert [(e.line, e.field) for e in report.errors] == [
        (2, "access"),
        (3, "feature"),
        (4, "geometry.coordinates"),
    ]


def rec(line: int, lat: float, lng: float, **kw: object) -> AedRecord:
    return AedRecord(line=line, lat=lat, lng=lng, **kw)  # type: ignore[arg-type]


def test_dedupe_keeps_the_last_by_external_id_and_by_name_within_10_m() -> None:
    records = [
        rec(2, 22.5, 114.0, external_id="X"),
        rec(3, 22.5, 114.0, name="Kiosk"),
        rec(4, 22.50005, 114.0, name="Kiosk"),  # 5.6 m north: same AED
        rec(5, 22.5002, 114.0, name="Kiosk"),  # 22 m from line 4: another one
        rec(6, 22.6, 114.0, external_id="X"),
        rec(7, 22.50005, 114.0, name="Other"),
    ]
    kept, dups = dedupe_records(records, 10.0)
    assert [r.line for r in kept] == [4, 5, 6, 7]
    assert [(d.line, d.superseded_by) for d in dups] == [(2, 6), (3, 4)]


def test_merge_new_record_gets_defaults_and_flags_bad_hours() -> None:
    row, changes = merge_record(None, rec(2, 22.5, 114.0, name="Hall", opening_hours="ask inside"))
    assert row["status"] == "active" and row["access"] == "public" and row["opening_hours_error"]
    assert changes["name"] == "Hall" and "id" not in changes


def test_merge_onto_stored_row_keeps_what_is_not_given_and_lists_changes() -> None:
    stored = AedRow(
        id="a1", lat=22.5, lng=114.0,
        values={"external_id": "X", "name": "Hall", "status": "out_of_service", "access": "public",
                "opening_hours": "24/7", "opening_hours_error": None, "address": "1 Road",
                "location_detail": None,
                "contact": None, "source": None, "last_checked": None},
    )  # fmt: skip
    row, changes = merge_record(stored, rec(9, 22.5, 114.0, external_id="X", name="Hall"))
    assert changes == {} and row["status"] == "out_of_service" and row["address"] == "1 Road"
    row, changes = merge_record(
        stored, rec(9, 22.5001, 114.0, external_id="X", opening_hours="Mo 08:00-09:00")
    )
    assert changes["opening_hours"] == ["24/7", "Mo 08:00-09:00"]
    assert changes["location"] == [[22.5, 114.0], [22.5001, 114.0]] and row["lat"] == 22.5001
    assert row["id"] == "a1"


def test_policy_local_time_and_unknown_setting() -> None:
    spots = [
        AedSpot("1", None, "closed at night", 0, 0, "Mo-Su 08:00-20:00", "public", None),
        AedSpot("2", None, "unknown", 0, 0, "ask the guard", "public", None),
        AedSpot("3", None, "open", 0, 0, "24/7", "public", None),
    ]
    # 13:30 UTC is 21:30 in Shanghai: the first is closed although it is daytime in UTC.
    at = datetime(2026, 11, 23, 13, 30, tzinfo=UTC)
    allow = HoursPolicy.from_settings(Settings(aed_unknown_hours_available=True))
    deny = HoursPolicy.from_settings(Settings(aed_unknown_hours_available=False))
    assert [s.id for s in pick_available(spots, at, allow, 10)] == ["2", "3"]
    assert [s.id for s in pick_available(spots, at, deny, 10)] == ["3"]
    assert [s.id for s in pick_available(spots, at, allow, 1)] == ["2"]
    assert (
        HoursPolicy.from_settings(Settings()).open_state(
            "Mo-Fr 08:00-18:00; PH off", datetime(2026, 10, 1, 4, tzinfo=UTC)
        )
        is False
    )
