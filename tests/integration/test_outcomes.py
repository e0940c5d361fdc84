"""Outcomes and the Utstein report through the real service (issue 22, item 2): an incident is
opened, a responder accepts over HTTP, the dispatcher closes it, the outcome is recorded, amended
and refused when it contradicts itself; the CSV is parsed back and checked against the hand-made
facts.

The arrival times (`alerts.aed_picked_up_at`, `on_scene_at`) are written with SQL: they are what
the phone's geofences record (the `arrival` piece of issue 22), and exact values make exact
intervals to check.
"""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.integration.test_dispatch import offset, remote_spot
from tests.support.db import fetch
from tests.support.eido import case, new_tracking_id
from tests.support.people import bearer, on_duty_at

pytestmark = pytest.mark.integration
CITY = ZoneInfo("Asia/Shanghai")  # the test server's DISPATCH_TIMEZONE (the default)


def when(text: str) -> datetime:
    return datetime.fromisoformat(text)


def attended(http: httpx.Client, admin: dict[str, str], desk: dict[str, str]) -> dict[str, Any]:
    """An open incident 100 m from a responder on duty, whose alert they accepted over HTTP."""
    lat, lng = remote_spot()
    person = on_duty_at(http, admin, lat, lng)
    r = http.post(
        "/v1/incidents",
        json={"lat": offset(lat, lng, 100, 0)[0], "lng": lng, "category": "cardiac_arrest"},
        headers=desk,
    )
    assert r.status_code == 201, r.text
    incident = r.json()
    alert = next(a for a in incident["alerts"] if a["responder_id"] == person["id"])
    r = http.post(
        f"/v1/alerts/{alert['alert_id']}/answer", json={"response": "accept"}, headers=bearer(person["token"])
    )
    assert r.status_code == 200, r.text
    return {"incident": incident, "alert_id": alert["alert_id"], "person": person}


def close(http: httpx.Client, desk: dict[str, str], incident_id: str) -> None:
    r = http.post(f"/v1/incidents/{incident_id}/close", json={"reason": "handed to EMS"}, headers=desk)
    assert r.status_code == 200, r.text


def problems(r: httpx.Response) -> list[tuple[str, str]]:
    assert r.status_code == 422, r.text
    return [(e["field"], e["rule"]) for e in r.json()["errors"]]


def report(http: httpx.Client, headers: dict[str, str], start: datetime, end: datetime) -> httpx.Response:
    return http.get(
        "/v1/reports/utstein", params={"from": start.isoformat(), "to": end.isoformat()}, headers=headers
    )


async def test_outcome_recorded_after_closing_amended_and_reported(
    http: httpx.Client, admin_headers: dict[str, str], token_for, store_env: dict[str, str]
) -> None:
    start = datetime.now(UTC) - timedelta(seconds=1)
    desk, planner = token_for("dispatcher", "desk 3"), token_for("planner")
    story = attended(http, admin_headers, desk)
    incident_id = story["incident"]["id"]
    opened = when(story["incident"]["created_at"])
    path = f"/v1/incidents/{incident_id}/outcome"
    at = lambda s: (opened + timedelta(seconds=s)).isoformat()  # noqa: E731

    # before closing: nothing may be recorded
    r = http.put(path, json={"rosc": True}, headers=desk)
    assert r.status_code == 409 and "still open" in r.json()["detail"]
    close(http, desk, incident_id)
    # the phone's arrival times (the geofence piece): AED taken at +1 s, at the patient at +2 s
    await fetch(
        store_env["DATABASE_URL"],
        "UPDATE alerts SET aed_picked_up_at = opened_at + interval '1 second', "
        "on_scene_at = opened_at + interval '2 seconds' WHERE id = $1",
        uuid.UUID(story["alert_id"]),
    )
    assert http.get(path, headers=desk).status_code == 404  # nothing recorded yet
    # the times below must have passed
    await asyncio.sleep(max(0.0, (opened + timedelta(seconds=5.1) - datetime.now(UTC)).total_seconds()))

    facts = {
        "witnessed": "bystander",
        "bystander_cpr": True,
        "first_responder_cpr_at": at(2),
        "aed_attached": True,
        "aed_attached_at": at(3),
        "shock_delivered": True,
        "first_shock_at": at(4),
        "ems_arrival_at": at(5),
        "rosc": True,
        "survived_admission": None,
        "note": "shock at the metro exit",
    }
    r = http.put(path, json=facts, headers=desk)
    assert r.status_code == 201, r.text
    first = r.json()
    assert first["recorded_by"] == "dispatcher:desk 3" and first["survived_discharge"] is None
    assert when(first["first_shock_at"]) == opened + timedelta(seconds=4)
    assert http.get(path, headers=desk).json() == first

    # weeks later the centre knows more: only what is sent changes
    r = http.put(path, json={"survived_admission": True, "survived_discharge": True}, headers=desk)
    assert r.status_code == 200, r.text
    amended = r.json()
    assert amended["survived_discharge"] is True and amended["witnessed"] == "bystander"
    assert amended["recorded_at"] == first["recorded_at"] and amended["updated_at"] > first["updated_at"]
    log = http.get(f"/v1/incidents/{incident_id}", headers=desk).json()["events"]
    recorded = [e["data"] for e in log if e["kind"] == "outcome_recorded"]
    assert [d["changed"] for d in recorded] == [
        [k for k, v in facts.items() if v is not None],
        ["survived_admission", "survived_discharge"],
    ]
    assert {d["by"] for d in recorded} == {"dispatcher:desk 3"}

    # contradictions are refused, naming the field and the rule, and change nothing
    assert problems(http.put(path, json={"aed_attached": False}, headers=desk)) == [
        ("shock_delivered", "true needs aed_attached not false"),
        ("aed_attached_at", "needs aed_attached true"),
    ]
    assert problems(http.put(path, json={"shock_delivered": None}, headers=desk)) == [
        ("first_shock_at", "needs shock_delivered true")
    ]
    assert problems(http.put(path, json={"survived_admission": False}, headers=desk)) == [
        ("survived_discharge", "true needs survived_admission not false")
    ]
    assert problems(http.put(path, json={"rosc": False}, headers=desk)) == [
        ("survived_admission", "true needs rosc not false")
    ]
    before_open = (opened - timedelta(minutes=1)).isoformat()
    [(field, rule)] = problems(http.put(path, json={"ems_arrival_at": before_open}, headers=desk))
    assert field == "ems_arrival_at" and rule.startswith("must not be before the incident opened")
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert problems(http.put(path, json={"first_responder_cpr_at": tomorrow}, headers=desk)) == [
        ("first_responder_cpr_at", "must not be in the future")
    ]
    assert problems(http.put(path, json={"first_shock_at": at(1)}, headers=desk)) == [
        ("first_shock_at", "must not be before aed_attached_at")
    ]
    [(field, _)] = problems(http.put(path, json={"ems_arrival_at": "2026-11-30T10:00:00"}, headers=desk))
    assert field == "ems_arrival_at"  # no UTC offset
    [(field, _)] = problems(http.put(path, json={"witnessed": "a passer-by"}, headers=desk))
    assert field == "witnessed"
    assert http.get(path, headers=desk).json() == amended

    # who may: not a planner, not a responder
    assert http.put(path, json={"rosc": True}, headers=planner).status_code == 403
    assert http.put(path, json={"rosc": True}, headers=bearer(story["person"]["token"])).status_code == 403
    assert http.put(f"/v1/incidents/{uuid.uuid4()}/outcome", json={}, headers=desk).status_code == 404

    # a second incident closed with no outcome, a third still open: the report's other cases
    bare = attended(http, admin_headers, desk)
    close(http, desk, bare["incident"]["id"])
    still_open = attended(http, admin_headers, desk)
    end = datetime.now(UTC) + timedelta(seconds=1)

    r = report(http, planner, start, end)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert r.headers["x-open-incidents-left-out"] == "1"
    rows = {row["Incident ID"]: row for row in csv.DictReader(io.StringIO(r.text))}
    assert set(rows) == {incident_id, bare["incident"]["id"]}  # the open one is left out
    row = rows[incident_id]
    local = lambda s: (opened + timedelta(seconds=s)).astimezone(CITY).isoformat(timespec="seconds")  # noqa: E731
    assert row == {
        "Incident ID": incident_id,
        "Date of arrest": opened.astimezone(CITY).date().isoformat(),
        "Location of arrest": "Public",
        "Witnessed status": "Bystander witnessed",
        "Bystander CPR": "Yes",
        "First responder CPR": "Yes",
        "AED applied before EMS arrival": "Yes",
        "Defibrillation before EMS arrival": "Yes",
        "Any ROSC": "Yes",
        "Survived event": "Yes",
        "Survival to hospital discharge": "Yes",
        "Time of call received": local(0),
        "Time of EMS arrival at patient": local(5),
        "Time of first responder CPR": local(2),
        "Time AED applied": local(3),
        "Time of first defibrillation": local(4),
        "Time responder at patient": local(2),
        "Time AED at patient": local(2),
        "Call to responder at patient (s)": "2",
        "Call to AED at patient (s)": "2",
        "Call to first responder CPR (s)": "2",
        "Call to first defibrillation (s)": "4",
        "Call to EMS arrival (s)": "5",
        "Category": "cardiac_arrest",
        "Outcome recorded": "Yes",
    }
    assert row["Time of call received"].endswith("+08:00")
    unknown = rows[bare["incident"]["id"]]
    assert unknown["Outcome recorded"] == "No" and unknown["Witnessed status"] == "Unknown"
    assert unknown["Any ROSC"] == "Unknown" and unknown["Call to responder at patient (s)"] == ""
    close(http, desk, still_open["incident"]["id"])


def test_report_window_and_roles(http: httpx.Client, token_for) -> None:
    planner, desk, coordinator = token_for("planner"), token_for("dispatcher"), token_for("coordinator")
    now = datetime.now(UTC)
    assert report(http, coordinator, now - timedelta(days=1), now).status_code == 200
    assert report(http, desk, now - timedelta(days=1), now).status_code == 403
    [(field, rule)] = problems(report(http, planner, now, now - timedelta(hours=1)))
    assert (field, rule) == ("to", "must be after from")
    [(field, rule)] = problems(report(http, planner, now - timedelta(days=367), now))
    assert field == "to" and "at most 366 days" in rule
    r = http.get(
        "/v1/reports/utstein", params={"from": "2026-11-01T00:00:00", "to": now.isoformat()}, headers=planner
    )
    assert [f for f, _ in problems(r)] == ["from"]  # no UTC offset: which day is meant?
    r = http.get("/v1/reports/utstein", params={"to": now.isoformat()}, headers=planner)
    assert [f for f, _ in problems(r)] == ["from"]


def test_a_centre_reports_on_its_own_incidents_only(
    http: httpx.Client, admin_headers: dict[str, str], token_for
) -> None:
    desk, centre = token_for("dispatcher"), token_for("cad")  # the cad token speaks for `test-centre`
    lat, lng = remote_spot()
    r = http.post("/v1/cad/eido", json=case("point", new_tracking_id(), to=(lat, lng)), headers=centre)
    assert r.status_code == 201, r.text
    own = r.json()["incident_id"]
    other = attended(http, admin_headers, desk)["incident"]["id"]
    for incident_id in (own, other):
        close(http, desk, incident_id)
    r = http.put(f"/v1/incidents/{own}/outcome", json={"survived_discharge": False}, headers=centre)
    assert r.status_code == 201, r.text
    assert r.json()["recorded_by"].startswith("cad:")
    assert http.get(f"/v1/incidents/{own}/outcome", headers=centre).json()["survived_discharge"] is False
    r = http.put(f"/v1/incidents/{other}/outcome", json={"rosc": True}, headers=centre)
    assert r.status_code == 403 and "own incidents" in r.json()["detail"]
