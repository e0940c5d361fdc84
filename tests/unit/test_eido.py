"""EIDO and PIDF-LO reading (cad.eido, cad.pidf, cad.categories): each RFC 5491 shape gives its
representative point and uncertainty; civic-only and by-reference are read; bad input names the JSON
path and the rule."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

import pytest

from cad.categories import category_for
from cad.eido import EidoError, changed_fields, parse_eido
from cad.pidf import PidfError, parse_pidf
from geo.distance import haversine_m
from tests.support.eido import sample

LAT, LNG = 22.5431, 114.0579


def test_a_point_with_its_civic_address() -> None:
    eido = parse_eido(sample("point"))
    assert eido.tracking_id == "urn:emergency:uid:incidentid:7f3a9c1e:120.sz.example"
    assert eido.updated_at == datetime(2026, 11, 29, 11, 0, tzinfo=UTC)
    assert eido.geodetic is not None and (eido.geodetic.lat, eido.geodetic.lng) == (LAT, LNG)
    assert eido.geodetic.shape == "Point" and eido.geodetic.uncertainty_m is None
    assert eido.civic == "市民中心B区, 6008, 深南大道, 福田区, 深圳市, 广东省"
    assert eido.type_codes == ("09-E-01", "EMS-CardiacArrest")
    assert eido.status == "active" and eido.agency == "120.sz.example" and eido.call_taker == "calltaker-17"
    assert eido.note == "Man collapsed at the bus stop, not breathing."


def test_a_circle_keeps_its_radius() -> None:
    g = parse_eido(sample("circle")).geodetic
    assert g is not None and (g.lat, g.lng, g.shape, g.uncertainty_m) == (LAT, LNG, "Circle", 35.0)


def test_an_ellipse_is_as_uncertain_as_its_semi_major_axis() -> None:
    g = parse_eido(sample("ellipse")).geodetic
    assert g is not None and (g.lat, g.lng, g.uncertainty_m) == (LAT, LNG, 120.0)


def test_a_polygon_gives_its_centroid_and_farthest_vertex() -> None:
    g = parse_eido(sample("polygon")).geodetic
    assert g is not None and g.shape == "Polygon"
    assert g.lat == pytest.approx(22.5431, abs=1e-7) and g.lng == pytest.approx(114.0579, abs=1e-7)
    assert g.uncertainty_m == pytest.approx(haversine_m(g.lat, g.lng, 22.5427, 114.0575), rel=1e-9)
    assert 55 < g.uncertainty_m < 65  # half the diagonal of a ~89 x ~82 m square


def test_an_arc_band_gives_the_middle_of_the_band() -> None:
    g = parse_eido(sample("arcband")).geodetic
    assert g is not None and g.shape == "ArcBand"
    assert haversine_m(LAT, LNG, g.lat, g.lng) == pytest.approx(300, abs=0.5)  # mid radius
    assert g.lat > LAT and g.lng > LNG  # bearing 50 degrees: north-east
    assert 100 < g.uncertainty_m < 150  # to the band's outer corners


def test_civic_only_and_by_reference_have_no_geodetic_location() -> None:
    civic = parse_eido(sample("civic_only"))
    assert civic.geodetic is None and civic.civic and "深南大道" in civic.civic
    ref = parse_eido(sample("by_reference"))
    assert ref.geodetic is None and ref.civic is None
    assert ref.reference == "https://lis.120.sz.example/loc/7f3a9c1e"


def test_a_radius_without_its_unit_names_the_path_and_the_rule() -> None:
    with pytest.raises(EidoError) as caught:
        parse_eido(sample("malformed_circle"))
    assert caught.value.path == "$.locationComponent[0].locationByValue"
    assert "Circle/radius@uom" in caught.value.rule and "9001" in caught.value.rule


@pytest.mark.parametrize(
    ("change", "path", "rule"),
    [
        (lambda d: d.pop("incidentComponent"), "$.incidentComponent", "is required"),
        (
            lambda d: d["incidentComponent"].update(incidentTrackingIdentifier="case 17"),
            "$.incidentComponent.incidentTrackingIdentifier",
            "urn:emergency:uid:incidentid",
        ),
        (
            lambda d: d["incidentComponent"].update(lastUpdateTimeStamp="2026-11-29T19:00:00"),
            "$.incidentComponent.lastUpdateTimeStamp",
            "UTC offset",
        ),
        (lambda d: d.pop("locationComponent"), "$.locationComponent", "is required"),
        (
            lambda d: d["locationComponent"][0].pop("locationByValue"),
            "$.locationComponent[0]",
            "locationByValue",
        ),
        (
            lambda d: d["incidentComponent"].update(locationReference="$ref:loc-9"),
            "$.incidentComponent.locationReference",
            "names no locationComponent",
        ),
        (
            lambda d: d["notesComponent"][0].update(noteText=17),
            "$.notesComponent[0].noteText",
            "non-empty string",
        ),
        (
            lambda d: d["locationComponent"][0].update(locationByValue="<presence>"),
            "$.locationComponent[0].locationByValue",
            "not well-formed XML",
        ),
    ],
)
def test_malformed_documents_name_path_and_rule(change, path: str, rule: str) -> None:  # type: ignore[no-untyped-def]
    doc = copy.deepcopy(sample("point"))
    change(doc)
    with pytest.raises(EidoError) as caught:
        parse_eido(doc)
    assert caught.value.path == path and rule in caught.value.rule


@pytest.mark.parametrize(
    ("value", "path", "rule"),
    [
        ("a\x00b", "$.extra[1].x", "NUL"),
        (float("inf"), "$.extra[1].x", "finite"),
    ],
)
def test_what_the_store_cannot_keep_is_refused_wherever_it_is(value: object, path: str, rule: str) -> None:
    doc = {**sample("point"), "extra": [1, {"x": value}]}
    with pytest.raises(EidoError) as caught:
        parse_eido(doc)
    assert caught.value.path == path and rule in caught.value.rule


def test_not_an_object() -> None:
    with pytest.raises(EidoError) as caught:
        parse_eido([1, 2])
    assert caught.value.path == "$"


@pytest.mark.parametrize(
    ("xml", "where"),
    [
        (
            '<gml:Point xmlns:gml="http://www.opengis.net/gml"><gml:pos>95 10</gml:pos></gml:Point>',
            "Point/pos",
        ),
        (
            '<gml:Point xmlns:gml="http://www.opengis.net/gml" srsName="EPSG:3857"><gml:pos>1 2</gml:pos>'
            "</gml:Point>",
            "Point@srsName",
        ),
        (
            '<gml:Polygon xmlns:gml="http://www.opengis.net/gml"><gml:exterior><gml:LinearRing>'
            "<gml:posList>1 1 1 2 1 1</gml:posList></gml:LinearRing></gml:exterior></gml:Polygon>",
            "Polygon",
        ),
        ("<presence/>", "location-info"),
    ],
)
def test_pidf_rules(xml: str, where: str) -> None:
    with pytest.raises(PidfError) as caught:
        parse_pidf(xml)
    assert caught.value.where == where


def test_status_texts_that_end_our_part() -> None:
    doc = copy.deepcopy(sample("point"))
    doc["incidentComponent"]["incidentStatusCommonRegistryText"] = ["Dispatched", "EMS On-Scene"]
    assert parse_eido(doc).status == "ems_on_scene"
    doc["incidentComponent"]["incidentStatusCommonRegistryText"] = "Cancelled"
    assert parse_eido(doc).status == "closed"


def test_changed_fields_are_the_facts_that_differ() -> None:
    first = parse_eido(sample("point")).fields()
    second = parse_eido(sample("circle")).fields()
    assert changed_fields(None, first) == []
    assert changed_fields(first, second) == ["civic", "shape", "uncertainty_m"]


def test_categories_by_code_prefix_and_the_fallback() -> None:
    table = {"09": "cardiac_arrest", "09-E": "unconscious", "choking": "choking"}
    assert category_for(["09-E-01"], table).category == "unconscious"  # the longest key wins
    assert category_for(["09-D-01"], table).category == "cardiac_arrest"
    assert category_for(["CHOKING"], table).mapped_from == "CHOKING"
    unknown = category_for(["FIRE-STRUCTURE"], table)
    assert (unknown.category, unknown.mapped_from) == ("other_medical", None)
