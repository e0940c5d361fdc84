"""AED registry over real HTTP against real PostGIS: CRUD with history, imports, reports, maps."""

from __future__ import annotations

import os
import random
import secrets
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from geo.crs import gcj02_to_wgs84, wgs84_to_gcj02
from geo.distance import haversine_m
from tests.support.server import ROOT

pytestmark = pytest.mark.integration
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "aeds"


def fixture_text(name: str, run: str) -> str:
    """A fixture with `{run}` replaced, so ids and names are unique in the shared database."""
    return (FIXTURES / name).read_text(encoding="utf-8").replace("{run}", run)


def remote_spot() -> tuple[float, float]:
    """A random place far from other tests' AEDs (the database is shared)."""
    return random.uniform(-50, 50), random.uniform(-170, 170)


def new_aed(http: httpx.Client, headers: dict[str, str], lat: float, lng: float, **extra: object) -> dict:
    body = {"name": f"AED {secrets.token_hex(4)}", "lat": lat, "lng": lng, "opening_hours": "24/7", **extra}
    r = http.post("/v1/aeds", json=body, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


def nearby_ids(http: httpx.Client, headers: dict[str, str], lat: float, lng: float, **params: object) -> list:
    r = http.get("/v1/aeds/nearby", params={"lat": lat, "lng": lng, **params}, headers=headers)
    assert r.status_code == 200, r.text
    return [a["id"] for a in r.json()["aeds"]]


def test_create_read_patch_remove_keeps_history(http, admin_headers, token_for) -> None:
    lat, lng = remote_spot()
    ext = f"AED-{secrets.token_hex(5)}"
    created = new_aed(http, admin_headers, lat, lng, external_id=ext, location_detail="beside the lifts")
    assert created["status"] == "active" and created["access"] == "public"
    assert created["external_id"] == ext and created["open_now"] is True
    assert abs(created["lat"] - lat) < 1e-9 and abs(created["lng"] - lng) < 1e-9

    again = http.post(
        "/v1/aeds", json={"name": "x", "lat": lat, "lng": lng, "external_id": ext}, headers=admin_headers
    )
    assert again.status_code == 409 and again.json()["errors"][0]["field"] == "external_id"

    dispatcher = token_for("dispatcher", "desk 1")
    denied = http.patch(f"/v1/aeds/{created['id']}", json={"status": "out_of_service"}, headers=dispatcher)
    assert denied.status_code == 403
    r = http.patch(f"/v1/aeds/{created['id']}", json={"status": "out_of_service"}, headers=admin_headers)
    assert r.status_code == 200 and r.json()["status"] == "out_of_service"
    r = http.patch(
        f"/v1/aeds/{created['id']}",
        json={"opening_hours": "whenever the guard is there"},
        headers=admin_headers,
    )
    assert r.json()["opening_hours_error"] and r.json()["open_now"] is None  # kept as written, flagged
    r = http.delete(f"/v1/aeds/{created['id']}", headers=admin_headers)
    assert r.status_code == 200 and r.json()["status"] == "removed"
    assert http.get(f"/v1/aeds/{created['id']}", headers=dispatcher).json()["status"] == "removed"

    events = http.get(f"/v1/aeds/{created['id']}/history", headers=dispatcher).json()
    assert [e["kind"] for e in events] == ["created", "status", "updated", "status"]
    assert events[1]["data"]["status"] == ["active", "out_of_service"]
    assert events[3]["data"]["status"] == ["out_of_service", "removed"]
    assert all(e["actor"].startswith("admin:") for e in events)


def test_bad_input_names_field_and_rule(http, admin_headers) -> None:
    r = http.post("/v1/aeds", json={"name": "x", "lat": 91, "lng": 114}, headers=admin_headers)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "lat"
    r = http.post(
        "/v1/aeds", json={"name": "x", "lat": 22, "lng": 114, "status": "stolen"}, headers=admin_headers
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "status"
    r = http.post(
        "/v1/aeds", json={"name": "x", "lat": 22, "lng": 114, "colour": "red"}, headers=admin_headers
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "colour"
    r = http.get("/v1/aeds/nearby", params={"lat": 22, "lng": 200}, headers=admin_headers)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "lng"
    r = http.get("/v1/aeds/nearby", params={"lat": 22, "lng": 114, "crs": "osgb"}, headers=admin_headers)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "crs"
    r = http.get("/v1/aeds", params={"bbox": "114,22,113"}, headers=admin_headers)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "bbox"
    r = http.patch(f"/v1/aeds/{'0' * 8}-0000-0000-0000-{'0' * 12}", json={"name": "y"}, headers=admin_headers)
    assert r.status_code == 404
    assert http.get("/v1/aeds/nearby", params={"lat": 22, "lng": 114}).status_code == 401


def test_csv_import_with_mapping_gcj02_duplicates_and_broken_rows(http, admin_headers) -> None:
    run = secrets.token_hex(4)
    params = {
        "format": "csv", "crs": "gcj02", "lat_col": "纬度", "lng_col": "经度",
        "map": ["external_id:Site ID", "name:Site Name", "opening_hours:Hours", "location_detail:Where",
                "access:Access", "status:Status", "last_checked:Checked"],
    }  # fmt: skip
    body = fixture_text("registry_gcj02.csv", run).encode()
    r = http.post("/v1/aeds/import", params=params, content=body, headers=admin_headers)
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["rows"] == 14
    assert {(e["line"], e["field"]) for e in report["errors"]} == {
        (7, "lat"),
        (8, "lat"),
        (9, "access"),
        (10, "lng"),
        (11, "status"),
        (12, "last_checked"),
    }
    assert [(d["line"], d["superseded_by"]) for d in report["duplicates"]] == [(3, 13), (14, 15)]
    assert [f["line"] for f in report["hours_flagged"]] == [6]
    assert (report["created"], report["updated"], report["unchanged"]) == (6, 0, 0)

    # The GCJ-02 coordinates were converted: the stored point is the WGS-84 one, within 1 m.
    fc = http.get("/v1/aeds", params={"bbox": "114.0,22.5,114.1,22.6"}, headers=admin_headers).json()
    mine = {
        f["properties"]["external_id"]: f for f in fc["features"] if run in (f["properties"]["name"] or "")
    }
    lng, lat = mine[f"{run}-001"]["geometry"]["coordinates"]
    want_lat, want_lng = gcj02_to_wgs84(22.538008, 114.064525)
    assert haversine_m(lat, lng, want_lat, want_lng) < 1.0
    assert haversine_m(lat, lng, 22.538008, 114.064525) > 100  # GCJ-02 is offset by hundreds of metres
    assert mine[f"{run}-002"]["properties"]["location_detail"] == "gate 4 security booth"  # last row won
    assert mine[f"{run}-003"]["properties"]["access"] == "customers"
    stations = [f for f in mine.values() if f["properties"]["name"] == f"Community health station {run}"]
    assert len(stations) == 1 and stations[0]["properties"]["opening_hours"] == "Mo-Fr 08:00-20:00"

    # Re-import is an upsert: nothing new, nothing changed, and an edit updates in place.
    r = http.post("/v1/aeds/import", params=params, content=body, headers=admin_headers)
    assert (r.json()["created"], r.json()["updated"], r.json()["unchanged"]) == (0, 0, 6)
    edited = body.decode().replace("gate 4 security booth", "gate 5").encode()
    r = http.post("/v1/aeds/import", params=params, content=edited, headers=admin_headers)
    assert (r.json()["created"], r.json()["updated"], r.json()["unchanged"]) == (0, 1, 5)
    history = http.get(f"/v1/aeds/{mine[f'{run}-002']['properties']['id']}/history", headers=admin_headers)
    assert [e["kind"] for e in history.json()] == ["imported", "import_updated"]
    assert history.json()[1]["data"]["location_detail"] == ["gate 4 security booth", "gate 5"]


def test_csv_import_rejects_unknown_mapped_column_and_keeps_nothing_half_done(http, admin_headers) -> None:
    body = b"Site,lat,lng\nA,22.5,114.0\n"
    r = http.post("/v1/aeds/import", params={"map": "name:Nom"}, content=body, headers=admin_headers)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "map"
    r = http.post("/v1/aeds/import", params={"map": "colour:Site"}, content=body, headers=admin_headers)
    assert r.status_code == 422 and "unknown field" in r.json()["detail"]
    r = http.post("/v1/aeds/import", content=b"name,a,b\nA,1,2\n", headers=admin_headers)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "lat_col"


def test_geojson_import_with_osm_keys_multipart(http, admin_headers, token_for) -> None:
    run = secrets.token_hex(4)
    files = {
        "file": ("aeds.geojson", fixture_text("osm_defibrillators.geojson", run), "application/geo+json")
    }
    denied = http.post("/v1/aeds/import", files=files, headers=token_for("dispatcher"))
    assert denied.status_code == 403
    r = http.post("/v1/aeds/import", params={"source": "osm"}, files=files, headers=admin_headers)
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["rows"] == 7 and report["created"] == 4
    assert {(e["line"], e["field"]) for e in report["errors"]} == {
        (4, "emergency"),
        (5, "geometry"),
        (6, "lat"),
    }
    assert [f["line"] for f in report["hours_flagged"]] == [7]
    fc = http.get("/v1/aeds", params={"bbox": "114.05,22.53,114.08,22.56"}, headers=admin_headers).json()
    mine = {
        f["properties"]["name"]: f["properties"] for f in fc["features"] if run in f["properties"]["name"]
    }
    assert mine[f"Civic Center {run}"]["access"] == "public"  # OSM access=yes
    assert mine[f"Civic Center {run}"]["location_detail"] == "beside the ticket machines"
    assert mine[f"Civic Center {run}"]["external_id"] == f"{run}-osm-1"
    assert mine[f"Hotel lobby {run}"]["open_now"] is None
    detail = http.get(f"/v1/aeds/{mine[f'Unnamed ref {run}']['id']}", headers=admin_headers).json()
    assert (
        detail["address"] == "Fuhua Road 88" and detail["source"] == "osm" and detail["access"] == "private"
    )


def test_reports_take_an_aed_out_of_nearby_until_resolved(http, admin_headers, token_for) -> None:
    lat, lng = remote_spot()
    near = new_aed(http, admin_headers, lat + 0.0005, lng)
    far = new_aed(http, admin_headers, lat + 0.0050, lng)
    responder = token_for("planner", "field check")
    assert nearby_ids(http, responder, lat, lng, max_distance_m=2000) == [near["id"], far["id"]]

    r = http.post(f"/v1/aeds/{near['id']}/reports", json={"kind": "locked"}, headers=responder)
    assert r.status_code == 201 and r.json()["blocking"] is False
    assert nearby_ids(http, responder, lat, lng, max_distance_m=2000) == [near["id"], far["id"]]

    r = http.post(  # an admin's report counts at once (others need a second reporter: test_aed_trust)
        f"/v1/aeds/{near['id']}/reports", json={"kind": "broken", "note": "no power"}, headers=admin_headers
    )
    assert r.status_code == 201 and r.json()["blocking"] is True and r.json()["in_effect"] is True
    broken_id = r.json()["id"]
    assert nearby_ids(http, responder, lat, lng, max_distance_m=2000) == [far["id"]]
    bad = http.post(f"/v1/aeds/{near['id']}/reports", json={"kind": "stolen"}, headers=responder)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "kind"

    resolve = f"/v1/aeds/{near['id']}/reports/{broken_id}/resolve"
    assert http.post(resolve, json={}, headers=responder).status_code == 403
    r = http.post(resolve, json={"resolution": "battery replaced"}, headers=admin_headers)
    assert r.status_code == 200 and r.json()["resolved_by"].startswith("admin:")
    assert http.post(resolve, json={}, headers=admin_headers).status_code == 409
    assert nearby_ids(http, responder, lat, lng, max_distance_m=2000) == [near["id"], far["id"]]
    kinds = [e["kind"] for e in http.get(f"/v1/aeds/{near['id']}/history", headers=responder).json()]
    assert kinds == ["created", "report_opened", "report_opened", "report_resolved"]


def test_nearby_respects_status_hours_limit_distance_and_crs(http, admin_headers) -> None:
    lat, lng = 22.0 + random.uniform(0, 0.5), 113.0 + random.uniform(0, 0.5)  # inside China: GCJ-02 applies
    open_one = new_aed(http, admin_headers, lat + 0.001, lng, opening_hours="Mo-Fr 08:00-18:00")
    new_aed(http, admin_headers, lat + 0.0005, lng, status="out_of_service")
    night = new_aed(http, admin_headers, lat + 0.002, lng, opening_hours="Fr 22:00-02:00")
    unknown = new_aed(http, admin_headers, lat + 0.003, lng, opening_hours="ask the guard")
    monday_noon, saturday_1am = "2026-11-23T12:00:00+08:00", "2026-11-28T01:00:00+08:00"
    assert nearby_ids(http, admin_headers, lat, lng, at=monday_noon, limit=2) == [
        open_one["id"],
        unknown["id"],
    ]
    assert nearby_ids(http, admin_headers, lat, lng, at=saturday_1am, limit=2) == [night["id"], unknown["id"]]
    assert nearby_ids(http, admin_headers, lat, lng, at=monday_noon, max_distance_m=150) == [open_one["id"]]

    glat, glng = wgs84_to_gcj02(lat, lng)
    r = http.get(
        "/v1/aeds/nearby", params={"lat": glat, "lng": glng, "crs": "gcj02", "at": monday_noon, "limit": 1},
        headers=admin_headers,
    )  # fmt: skip
    first = r.json()["aeds"][0]
    assert first["id"] == open_one["id"] and abs(first["distance_m"] - 111.2) < 1.0
    want = wgs84_to_gcj02(lat + 0.001, lng)
    assert haversine_m(first["lat"], first["lng"], *want) < 0.5  # returned in the caller's datum
    assert first["walk_eta_s"] > first["distance_m"] / 1.4  # activation and circuity on top


def aed_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dispatch.cli", "aed", *args],
        cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_cli_import_writes_through_the_same_service(tmp_path, store_env, http, admin_headers) -> None:
    run = secrets.token_hex(4)
    path = tmp_path / "osm.geojson"
    path.write_text(fixture_text("osm_defibrillators.geojson", run), encoding="utf-8")
    result = aed_cli("import", str(path), "--source", "cli-test", env=store_env)
    assert result.returncode == 0, result.stderr
    assert "rows 7: created 4, updated 0, unchanged 0, bad 3" in result.stdout
    fc = http.get("/v1/aeds", params={"bbox": "114.05,22.53,114.08,22.56"}, headers=admin_headers).json()
    mine = [f["properties"] for f in fc["features"] if run in f["properties"]["name"]]
    assert len(mine) == 4
    missing = aed_cli("import", str(path), "--map", "colour:x", "--format", "csv", env=store_env)
    assert missing.returncode == 2 and "unknown field" in missing.stderr
