"""Responder tiers through the real app: a residential incident alerts only responders whose tier
allows homes; a tier change reaches the live store at once; bad values are refused naming the
field; the CSV import carries the tier and a file without the column leaves it alone."""

from __future__ import annotations

import secrets

import pytest

from tests.integration.test_dispatch import dispatcher, offset, remote_spot
from tests.support.db import fetch
from tests.support.people import on_duty_at, register
from tests.support.server import on_single_and_cluster

pytestmark = pytest.mark.integration
HOMES = {"alert_places": "public_and_homes"}


def alerted(http, desk, lat: float, lng: float, place: str | None) -> tuple[dict, set[str]]:  # type: ignore[no-untyped-def]
    body = {"lat": lat, "lng": lng, "category": "cardiac_arrest", **({"place": place} if place else {})}
    r = http.post("/v1/incidents", json=body, headers=desk)
    assert r.status_code == 201, r.text
    incident = r.json()
    return incident, {a["responder_id"] for a in incident["alerts"]}


@on_single_and_cluster
def test_a_residential_incident_alerts_only_responders_allowed_homes(http, admin_headers) -> None:
    desk = dispatcher(http, admin_headers)
    lat, lng = remote_spot()
    next_door = on_duty_at(http, admin_headers, *offset(lat, lng, 15, 0))  # public only, by default
    further = on_duty_at(http, admin_headers, *offset(lat, lng, 250, 0), **HOMES)
    assert next_door["alert_places"] == "public" and further["alert_places"] == "public_and_homes"

    home, who = alerted(http, desk, lat, lng, "residential")
    assert home["place"] == "residential"
    assert who == {further["id"]}  # the nearest is passed over: not alerted for homes
    detail = http.get(f"/v1/incidents/{home['id']}", headers=desk).json()
    assert detail["place"] == "residential" and detail["events"][0]["data"]["place"] == "residential"

    street, who = alerted(http, desk, lat, lng, None)
    assert street["place"] == "public"  # the default
    assert who == {next_door["id"], further["id"]}


@on_single_and_cluster
def test_a_tier_change_reaches_the_live_store_without_a_new_fix(http, admin_headers) -> None:
    desk = dispatcher(http, admin_headers)
    lat, lng = remote_spot()
    person = on_duty_at(http, admin_headers, *offset(lat, lng, 20, 0))
    assert alerted(http, desk, lat, lng, "residential")[1] == set()

    r = http.patch(f"/v1/responders/{person['id']}", json=HOMES, headers=admin_headers)
    assert r.status_code == 200 and r.json()["alert_places"] == "public_and_homes"
    assert alerted(http, desk, lat, lng, "residential")[1] == {person["id"]}

    r = http.patch(f"/v1/responders/{person['id']}", json={"alert_places": "public"}, headers=admin_headers)
    assert r.status_code == 200
    assert alerted(http, desk, lat, lng, "residential")[1] == set()
    assert alerted(http, desk, lat, lng, "public")[1] == {person["id"]}


def test_bad_tiers_and_places_name_the_field(http, admin_headers) -> None:
    desk = dispatcher(http, admin_headers)
    r = http.post(
        "/v1/incidents", json={"lat": 0, "lng": 0, "category": "choking", "place": "kitchen"}, headers=desk
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "place", r.text
    body = {"external_id": "T-" + secrets.token_hex(6), "name": "Li", "category": "volunteer"}
    r = http.post("/v1/responders", json={**body, "alert_places": "everywhere"}, headers=admin_headers)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "alert_places", r.text
    person = register(http, admin_headers)
    r = http.patch(f"/v1/responders/{person['id']}", json={"alert_places": "homes"}, headers=admin_headers)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "alert_places", r.text


async def test_the_csv_import_sets_the_tier_and_a_file_without_the_column_keeps_it(
    http, admin_headers, store_env
) -> None:
    run = "TIER" + secrets.token_hex(4)
    headers = {**admin_headers, "content-type": "text/csv"}

    async def tiers() -> dict[str, str]:
        rows = await fetch(
            store_env["DATABASE_URL"],
            "SELECT external_id, alert_places FROM responders WHERE external_id LIKE $1",
            run + "-%",
        )
        return {r["external_id"]: r["alert_places"] for r in rows}

    with_tiers = (
        "external_id,name,category,alert_places,cert_kind,cert_number,cert_valid_from,cert_valid_until\n"
        f"{run}-1,Zhang San,volunteer,public_and_homes,cpr,N1,2025-01-01,2027-12-31\n"
        f"{run}-2,Li Si,volunteer,,cpr,N2,2025-01-01,2027-12-31\n"
        f"{run}-3,Wang Wu,volunteer,mansions,cpr,N3,2025-01-01,2027-12-31\n"
    )
    r = http.post("/v1/responders/import", content=with_tiers, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["created"] == 2
    assert [(e["line"], e["field"]) for e in r.json()["errors"]] == [(4, "alert_places")]
    assert await tiers() == {f"{run}-1": "public_and_homes", f"{run}-2": "public"}

    without = (
        "external_id,name,category,cert_kind,cert_number,cert_valid_from,cert_valid_until\n"
        f"{run}-1,Zhang San,volunteer,cpr,N1,2025-01-01,2027-12-31\n"
    )
    r = http.post("/v1/responders/import", content=without, headers=headers)
    assert r.status_code == 200 and r.json()["unchanged"] == 1, r.text
    assert (await tiers())[f"{run}-1"] == "public_and_homes"

    demoted = with_tiers.splitlines()[1].replace("public_and_homes", "public")
    r = http.post(
        "/v1/responders/import", content=with_tiers.splitlines()[0] + "\n" + demoted, headers=headers
    )
    assert r.status_code == 200 and r.json()["updated"] == 1, r.text
    assert (await tiers())[f"{run}-1"] == "public"
