"""Hostile or broken input gets a 4xx naming the field and the rule, never a 5xx (issue 16, items 8-10, 13).

Each case was a 500 (or, for strings as coordinates, silently accepted) before the fix.
"""

from __future__ import annotations

import secrets
from typing import Any

import httpx
import pytest

from tests.support.people import bearer, iso, register
from tests.support.phones import Phone
from tests.support.server import ServerProcess

NUL = "bad\x00text"


def _problem(r: httpx.Response, field: str, words: str) -> None:
    """A 422 whose `errors` name `field` with a rule containing `words`, and whose `detail` says so too."""
    assert r.status_code == 422, r.text
    body = r.json()
    assert any(e["field"] == field and words in e["rule"] for e in body["errors"]), body
    assert field in body["detail"], body


def _aed(http: httpx.Client, admin: dict[str, str], lat: float, lng: float) -> dict[str, Any]:
    body = {"external_id": "HOSTILE-" + secrets.token_hex(6), "name": "AED", "lat": lat, "lng": lng}
    r = http.post("/v1/aeds", json=body, headers=admin)
    assert r.status_code == 201, r.text
    return r.json()


# --- item 8: NUL characters ------------------------------------------------------------------------
def test_nul_in_any_text_field_is_a_422_naming_the_field(http, admin_headers, token_for) -> None:
    dispatcher = token_for("dispatcher")
    aed = _aed(http, admin_headers, 22.5, 114.0)
    incident = {"lat": 22.5, "lng": 114.0, "category": "choking"}
    r = http.post("/v1/incidents", json=incident, headers=dispatcher)
    assert r.status_code == 201, r.text
    incident_id = r.json()["id"]
    person = register(http, admin_headers)
    cases: list[tuple[str, str, dict[str, Any], dict[str, str], str]] = [
        ("POST", "/v1/incidents", {**incident, "address": NUL}, dispatcher, "address"),
        ("POST", "/v1/incidents", {**incident, "note": NUL}, dispatcher, "note"),
        ("POST", f"/v1/incidents/{incident_id}/close", {"reason": NUL}, dispatcher, "reason"),
        ("POST", "/v1/aeds", {"name": NUL, "lat": 22.5, "lng": 114.0}, admin_headers, "name"),
        ("PATCH", f"/v1/aeds/{aed['id']}", {"location_detail": NUL}, admin_headers, "location_detail"),
        ("POST", f"/v1/aeds/{aed['id']}/reports", {"kind": "other", "note": NUL}, dispatcher, "note"),
        ("POST", "/v1/tokens", {"role": "planner", "label": NUL}, admin_headers, "label"),
        ("POST", "/v1/responders", {"external_id": "X1", "name": NUL, "category": "other"}, admin_headers,
         "name"),
        ("PATCH", f"/v1/responders/{person['id']}", {"phone": NUL}, admin_headers, "phone"),
    ]  # fmt: skip
    for method, path, body, headers, field in cases:
        r = http.request(method, path, json=body, headers=headers)
        _problem(r, field, "NUL")
    r = http.get(f"/v1/incidents/{incident_id}", headers=dispatcher)
    assert r.json()["status"] == "open", "a refused close changed nothing"


def test_nul_in_csv_imports_is_reported_by_line_and_good_rows_kept(http, admin_headers) -> None:
    run = secrets.token_hex(4)
    csv = f"external_id,name,lat,lng\nN-{run}-1,Good,22.51,114.01\nN-{run}-2,Ba\x00d,22.52,114.02\n"
    r = http.post("/v1/aeds/import", params={"format": "csv"}, content=csv.encode(), headers=admin_headers)
    assert r.status_code == 200, r.text
    assert r.json()["created"] == 1
    assert [(e["line"], e["field"]) for e in r.json()["errors"]] == [(3, "name")]
    assert "NUL" in r.json()["errors"][0]["rule"]

    csv = f"external_id,name,category\nR-{run}-1,Good,volunteer\nR-{run}-2,Ba\x00d,volunteer\n"
    r = http.post("/v1/responders/import", content=csv.encode(), headers=admin_headers)
    assert r.status_code == 200, r.text
    assert r.json()["created"] == 1
    assert [(e["line"], e["field"]) for e in r.json()["errors"]] == [(3, "name")]
    assert "NUL" in r.json()["errors"][0]["reason"]


def test_nul_in_query_text_that_is_stored_is_a_422(http, admin_headers) -> None:
    r = http.post(
        "/v1/aeds/import", params={"format": "csv", "source": NUL}, headers=admin_headers,
        content=b"name,lat,lng\nA,22.5,114.0\n",
    )  # fmt: skip
    _problem(r, "source", "NUL")


# --- item 9: broken city boundaries ----------------------------------------------------------------
SQUARE = [[114.0, 22.5], [114.1, 22.5], [114.1, 22.6], [114.0, 22.6], [114.0, 22.5]]


def _city(geometry: Any, **props: Any) -> dict[str, Any]:
    feature = {"type": "Feature", "geometry": geometry, "properties": {"name": "Futian", **props}}
    return {"type": "FeatureCollection", "features": [feature]}


def _polygon(coordinates: Any, kind: str = "Polygon", **props: Any) -> dict[str, Any]:
    return _city({"type": kind, "coordinates": coordinates}, **props)


F0 = "features.0"
COORDS = f"{F0}.geometry.coordinates"
BROKEN_CITIES = [
    (_polygon([SQUARE[:3]]), f"{COORDS}.0", "at least 4"),
    (_polygon("x"), COORDS, "list of rings"),
    (_polygon([SQUARE], "Banana"), f"{F0}.geometry.type", "Polygon or MultiPolygon"),
    (_polygon([[[1e308, 22.5], *SQUARE[1:4], [1e308, 22.5]]]), f"{COORDS}.0.0", "lng must be within"),
    (_polygon([[["a", "b"]]], "MultiPolygon"), f"{COORDS}.0.0", "at least 4"),
    (_polygon([SQUARE], population="many"), f"{F0}.properties.population", "whole number"),
    (_polygon([SQUARE], name="Fu\x00tian"), f"{F0}.properties.name", "NUL"),
    ({"type": "FeatureCollection", "features": [7]}, F0, "Feature object"),
]


@pytest.mark.parametrize(("geojson", "field", "rule"), BROKEN_CITIES)
def test_a_broken_city_file_is_a_422_naming_the_feature_and_the_rule(
    http, admin_headers, geojson: dict[str, Any], field: str, rule: str
) -> None:
    r = http.put("/v1/city", json=geojson, headers=admin_headers)
    assert r.status_code == 422, r.text
    assert r.json()["detail"].startswith(f"{field}: ") and rule in r.json()["detail"], r.text


def test_a_district_named_twice_is_a_422(http, admin_headers) -> None:
    feature = _city({"type": "Polygon", "coordinates": [SQUARE]})["features"][0]
    r = http.put(
        "/v1/city", json={"type": "FeatureCollection", "features": [feature, feature]}, headers=admin_headers
    )
    assert r.status_code == 422 and "appears twice" in r.json()["detail"], r.text


# --- item 10: nearest-AED search at tiny distances ---------------------------------------------------
@pytest.mark.parametrize(
    ("aed_at", "query_at"),
    [((0.0, 0.0), (2.2e-16, 2.6e-12)), ((0.0, 0.0), (1e-12, 1e-12)), ((45.0, 179.9999999), (45.0, -180.0))],
)
def test_nearest_aed_search_at_a_hair_from_an_aed_is_answered(
    http, admin_headers, token_for, aed_at: tuple[float, float], query_at: tuple[float, float]
) -> None:
    """PostGIS's KNN scan raised "index returned tuples in wrong order" (a 500) for these points."""
    aed = _aed(http, admin_headers, *aed_at)
    try:
        lat, lng = query_at
        for params in ({"limit": 100}, {"limit": 100, "max_distance_m": 50}):
            r = http.get("/v1/aeds/nearby", params={"lat": lat, "lng": lng, **params}, headers=admin_headers)
            assert r.status_code == 200, r.text
            found = {a["id"]: a["distance_m"] for a in r.json()["aeds"]}
            assert found.get(aed["id"], 1e9) < 0.01, found
        dispatcher = token_for("dispatcher")
        r = http.post(
            "/v1/incidents", json={"lat": lat, "lng": lng, "category": "choking"}, headers=dispatcher
        )
        assert r.status_code == 201, r.text
        http.post(f"/v1/incidents/{r.json()['id']}/close", json={}, headers=dispatcher)
    finally:  # retired: later runs on the same database find only their own AED at this spot
        assert http.delete(f"/v1/aeds/{aed['id']}", headers=admin_headers).status_code == 200


# --- item 13: coordinates are numbers --------------------------------------------------------------
def test_coordinates_given_as_text_are_refused_in_every_body(http, admin_headers, token_for) -> None:
    person = register(http, admin_headers)
    me = bearer(person["token"])
    assert (
        http.put(f"/v1/responders/{person['id']}/duty", json={"on_duty": True}, headers=me).status_code == 200
    )
    gateway = token_for("gateway")
    dispatcher = token_for("dispatcher")
    fix = {"ts": iso(), "accuracy_m": 5}
    cases = [
        ("/v1/incidents", {"lat": "22.54", "lng": 114.05, "category": "choking"}, dispatcher, "lat"),
        ("/v1/incidents", {"lat": 22.54, "lng": "114.05", "category": "choking"}, dispatcher, "lng"),
        ("/v1/aeds", {"name": "A", "lat": "22.54", "lng": 114.05}, admin_headers, "lat"),
        ("/v1/locations", {"lat": "22.54", "lng": 114.05, **fix}, me, "lat"),
        ("/v1/locations", {"updates": [{"responder_id": person["id"], "lat": 22.54, "lng": "114.05", **fix}]},
         gateway, "updates.0.lng"),
    ]  # fmt: skip
    for path, body, headers, field in cases:
        _problem(http.post(path, json=body, headers=headers), field, "valid number")
    r = http.post("/v1/locations", json={"lat": 22, "lng": 114, **fix}, headers=me)
    assert r.status_code == 200 and r.json()["stored"] == 1, "whole numbers are numbers"
    r = http.get("/v1/aeds/nearby", params={"lat": "22.54", "lng": "114.05"}, headers=admin_headers)
    assert r.status_code == 200, "query parameters are text by nature and still read as numbers"


async def test_a_location_frame_with_text_coordinates_gets_an_error_frame(
    live_server: ServerProcess, http, admin_headers
) -> None:
    person = register(http, admin_headers)
    me = bearer(person["token"])
    assert (
        http.put(f"/v1/responders/{person['id']}/duty", json={"on_duty": True}, headers=me).status_code == 200
    )
    async with Phone(live_server.ws_url, person["token"]) as phone:
        await phone.send({"type": "location", "lat": "22.54", "lng": 114.05, "ts": iso()})
        error = await phone.next(type_="error")
        assert error.get("field") == "lat", error
        await phone.send({"type": "location", "lat": 22.54, "lng": 114.05, "ts": iso()})
        assert await phone.silent(0.5), "the socket stays open and takes the next, valid frame"
    r = http.get(f"/v1/responders/{person['id']}", headers=admin_headers)
    assert r.json()["position"]["lat"] == pytest.approx(22.54)


def test_the_same_certificate_twice_is_a_422_not_a_500(http, admin_headers) -> None:
    """Found by the fuzz run: the registry keeps a certificate once per kind and number."""
    twice = [
        {"kind": "cpr", "number": "RC-1", "valid_from": "2025-01-01", "valid_until": "2027-01-01"},
        {"kind": "cpr", "number": " RC-1 ", "valid_from": "2024-01-01", "valid_until": "2026-12-31"},
    ]
    body = {"external_id": "T-" + secrets.token_hex(6), "name": "Li", "category": "volunteer"}
    created = http.post("/v1/responders", json={**body, "certificates": twice}, headers=admin_headers)
    assert created.status_code == 422 and "certificates.1" in created.json()["detail"], created.text
    person = register(http, admin_headers)
    patched = http.patch(
        f"/v1/responders/{person['id']}", json={"certificates": twice}, headers=admin_headers
    )
    assert patched.status_code == 422 and "certificates.1" in patched.json()["detail"], patched.text
    kept = http.get(f"/v1/responders/{person['id']}", headers=admin_headers).json()["certificates"]
    assert len(kept) == 1  # nothing stored was lost to the refused change
    rows = "\n".join(
        [
            "external_id,name,phone,category,team,mode,cert_kind,cert_number,cert_issuer,cert_valid_from,cert_valid_until",
            "CSV-TWICE,Wang,,volunteer,,walk,cpr,RC-9,,2025-01-01,2027-01-01",
            "CSV-TWICE,Wang,,volunteer,,walk,cpr,RC-9,,2025-01-01,2027-01-01",
        ]
    )
    imported = http.post(
        "/v1/responders/import", content=rows, headers={**admin_headers, "Content-Type": "text/csv"}
    )
    assert imported.status_code == 200, imported.text
    report = imported.json()
    assert [(e["line"], e["field"]) for e in report["errors"]] == [(3, "cert_number")], report
