"""The service record through the real service: duty over HTTP measured against the duty sessions
it wrote, an accepted incident (real incident, HTTP answer, `on_scene` tapped over the socket, the
dispatcher closing it) against a hand count from the alert row, who may read what, and the monthly
export round-tripped through CSV and JSON.

The module runs its own server on a database of its own (`stores_of_its_own`), with a points rule
of its own (2 per duty hour, 7 per incident, 3 per arrival), so the export holds only this
module's responders and every figure can be counted by hand. Months before the current one are
made by inserting backdated `duty_sessions` rows in that database (no API writes the past).
Erasure is another piece of issue 22: an erased responder is made here by setting
`responders.deleted_at` in SQL.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import random
import secrets
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.support.db import fetch, stores_of_its_own
from tests.support.people import bearer, iso, on_duty_at, register
from tests.support.phones import Phone
from tests.support.server import ServerProcess

pytestmark = pytest.mark.integration
SHANGHAI = ZoneInfo("Asia/Shanghai")
RULE = {"points_per_duty_hour": 2.0, "points_per_incident": 7.0, "points_per_arrival": 3.0}
FIGURES = ("on_duty_s", "on_duty_hours", "incidents_attended", "incident_s", "arrivals", "points")
INTEGERS = {"incidents_attended", "arrivals", "responders"}
FLOATS = {"on_duty_s", "on_duty_hours", "incident_s", "points"}


@pytest.fixture(scope="module")
def server(app_env: dict[str, str], store_env: dict[str, str]) -> Iterator[ServerProcess]:
    env = {f"DISPATCH_{name.upper()}": str(value) for name, value in RULE.items()}
    with (
        stores_of_its_own(store_env["DATABASE_URL"], "service") as own,
        ServerProcess(env={**app_env, **own, **env}).start() as started,
    ):
        yield started


@pytest.fixture
def api(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30.0) as client:
        yield client


def role(api: httpx.Client, admin: dict[str, str], name: str) -> dict[str, str]:
    r = api.post("/v1/tokens", json={"role": name, "label": f"service {name}"}, headers=admin)
    assert r.status_code == 201, r.text
    return bearer(r.json()["token"])


def remote_spot() -> tuple[float, float]:
    """Somewhere no other responder of this module stands."""
    return random.uniform(-45, 45), random.uniform(-170, 170)


async def db_rows(server: ServerProcess, sql: str, *args: Any) -> list[dict[str, Any]]:
    return [dict(r) for r in await fetch(server.database_url, sql, *args)]


def seconds(delta: timedelta) -> float:
    return round(delta.total_seconds(), 3)


def service(api: httpx.Client, who: str, headers: dict[str, str], **window: str) -> dict[str, Any]:
    r = api.get(f"/v1/responders/{who}/service", params=window, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def points(on_duty_s: float, attended: int, arrivals: int) -> float:
    return round(
        on_duty_s / 3600 * RULE["points_per_duty_hour"]
        + attended * RULE["points_per_incident"]
        + arrivals * RULE["points_per_arrival"],
        2,
    )


async def test_time_on_duty_is_what_the_duty_switch_recorded(
    server: ServerProcess, api: httpx.Client, admin_headers: dict
) -> None:
    person = register(api, admin_headers)
    me, rid = bearer(person["token"]), person["id"]
    since = datetime.now(UTC).isoformat()

    def duty(on: bool) -> None:
        assert api.put(f"/v1/responders/{rid}/duty", json={"on_duty": on}, headers=me).status_code == 200

    began = time.monotonic()
    duty(True)
    inside_from = time.monotonic()
    await asyncio.sleep(1.2)
    inside_to = time.monotonic()
    duty(False)
    await asyncio.sleep(0.3)
    duty(True)
    await asyncio.sleep(0.8)
    duty(False)
    ended = time.monotonic()

    record = service(api, rid, me, **{"from": since})
    stretches = await db_rows(
        server, "SELECT started_at, ended_at FROM duty_sessions WHERE responder_id = $1", uuid.UUID(rid)
    )
    assert len(stretches) == 2 and all(s["ended_at"] is not None for s in stretches)
    by_hand = sum((s["ended_at"] - s["started_at"] for s in stretches), timedelta())
    assert record["on_duty_s"] == seconds(by_hand)
    # and the stretches are the time between the switches, as the phone saw it
    assert (inside_to - inside_from) + 0.8 <= record["on_duty_s"] <= ended - began
    assert record["on_duty_hours"] == round(by_hand.total_seconds() / 3600, 4)
    assert (record["incidents_attended"], record["incident_s"], record["arrivals"]) == (0, 0.0, 0)
    assert record["points"] == points(by_hand.total_seconds(), 0, 0)
    assert record["rule"] == RULE

    # an open stretch counts up to now
    duty(True)
    first = service(api, rid, me, **{"from": since})["on_duty_s"]
    await asyncio.sleep(0.6)
    later = service(api, rid, me, **{"from": since})["on_duty_s"]
    assert later - first >= 0.6
    duty(False)


async def turn_out(
    server: ServerProcess, api: httpx.Client, admin: dict[str, str], person: dict[str, Any], arrive: bool
) -> dict[str, Any]:
    """A real incident beside the (on-duty) person, accepted over HTTP, `on_scene` tapped over the
    socket when `arrive`, then closed by the dispatcher; returns the alert's row."""
    desk = role(api, admin, "dispatcher")
    lat, lng = LAST_SPOT[person["id"]]
    r = api.post("/v1/incidents", json={"lat": lat, "lng": lng, "category": "cardiac_arrest"}, headers=desk)
    assert r.status_code == 201, r.text
    incident = r.json()
    [alert] = [a for a in incident["alerts"] if a["responder_id"] == person["id"]]
    me = bearer(person["token"])
    r = api.post(f"/v1/alerts/{alert['alert_id']}/answer", json={"response": "accept"}, headers=me)
    assert r.status_code == 200, r.text
    if arrive:
        async with Phone(server.ws_url, person["token"]) as phone:
            await phone.send({"type": "status", "alert_id": alert["alert_id"], "status": "on_scene"})
            await asyncio.sleep(0.5)
    await asyncio.sleep(0.4)
    r = api.post(f"/v1/incidents/{incident['id']}/close", json={"reason": "EMS took over"}, headers=desk)
    assert r.status_code == 200, r.text
    [row] = await fetch(
        server.database_url,
        "SELECT status, answered_at, updated_at, on_scene_at FROM alerts WHERE id = $1",
        uuid.UUID(alert["alert_id"]),
    )
    assert row["status"] == "cancelled" and (row["on_scene_at"] is not None) == arrive
    return dict(row)


LAST_SPOT: dict[str, tuple[float, float]] = {}


def on_duty_somewhere(api: httpx.Client, admin: dict[str, str], **fields: Any) -> dict[str, Any]:
    lat, lng = remote_spot()
    person = on_duty_at(api, admin, lat + 0.0003, lng, **fields)
    LAST_SPOT[person["id"]] = (lat, lng)
    return person


async def test_incidents_attended_count_their_engagement_and_arrival(
    server: ServerProcess, api: httpx.Client, admin_headers: dict
) -> None:
    person = on_duty_somewhere(api, admin_headers)
    since = datetime.now(UTC).isoformat()
    arrived = await turn_out(server, api, admin_headers, person, arrive=True)
    stood = await turn_out(server, api, admin_headers, person, arrive=False)
    r = api.put(
        f"/v1/responders/{person['id']}/duty", json={"on_duty": False}, headers=bearer(person["token"])
    )
    assert r.status_code == 200

    record = service(api, person["id"], admin_headers, **{"from": since})
    engaged = sum((a["updated_at"] - a["answered_at"] for a in (arrived, stood)), timedelta())
    assert record["incidents_attended"] == 2 and record["arrivals"] == 1
    assert record["incident_s"] == seconds(engaged) and record["incident_s"] > 0.4
    [stretch] = await db_rows(
        server,
        "SELECT started_at, ended_at FROM duty_sessions WHERE responder_id = $1",
        uuid.UUID(person["id"]),
    )
    on_duty = stretch["ended_at"] - max(stretch["started_at"], datetime.fromisoformat(since))
    assert record["on_duty_s"] == seconds(on_duty)
    assert record["points"] == points(on_duty.total_seconds(), 2, 1)
    # a window after both runs holds neither
    after = service(api, person["id"], admin_headers, **{"from": datetime.now(UTC).isoformat()})
    assert (after["incidents_attended"], after["incident_s"], after["points"]) == (0, 0.0, 0.0)


def test_who_may_read_and_which_windows(api: httpx.Client, admin_headers: dict) -> None:
    person, other = register(api, admin_headers), register(api, admin_headers)
    path = f"/v1/responders/{person['id']}/service"
    assert api.get(path).status_code == 401
    assert api.get(path, headers=bearer(other["token"])).status_code == 403
    assert api.get(path, headers=bearer(person["token"])).status_code == 200
    assert api.get(path, headers=role(api, admin_headers, "coordinator")).status_code == 200
    for refused in ("planner", "dispatcher"):
        assert api.get(path, headers=role(api, admin_headers, refused)).status_code == 403
    assert api.get(f"/v1/responders/{uuid.uuid4()}/service", headers=admin_headers).status_code == 404

    # the default window: the 1st of this month on the city's clock, to now
    default = service(api, person["id"], admin_headers)
    start = datetime.fromisoformat(default["from"])
    assert (start.astimezone(SHANGHAI).day, start.astimezone(SHANGHAI).hour, start.utcoffset()) == (
        1,
        0,
        timedelta(hours=8),
    )
    assert abs(datetime.fromisoformat(default["to"]) - datetime.now(UTC)) < timedelta(seconds=30)

    for window, field in (
        ({"from": "2026-05-02", "to": "2026-05-01"}, "to"),
        ({"from": "2026-05-01", "to": "2026-05-01"}, "to"),
        ({"from": "2025-01-01", "to": "2026-05-01"}, "to"),
        ({"from": "2020-01-01"}, "from"),  # to: now
        ({"from": "yesterday"}, "from"),
        ({"to": "2026-13-01"}, "to"),
    ):
        r = api.get(path, params=window, headers=admin_headers)
        assert r.status_code == 422 and r.json()["detail"].startswith(f"{field}:"), (window, r.text)

    exports = "/v1/reports/service"
    assert api.get(exports, headers=bearer(person["token"])).status_code == 403
    assert api.get(exports, headers=role(api, admin_headers, "dispatcher")).status_code == 403
    assert api.get(exports, headers=role(api, admin_headers, "planner")).status_code == 200
    r = api.get(exports, params={"format": "xml"}, headers=admin_headers)
    assert r.status_code == 422 and r.json()["detail"].startswith("format:")
    r = api.get(exports, params={"by": "district"}, headers=admin_headers)
    assert r.status_code == 422 and r.json()["detail"].startswith("by:")
    r = api.get(exports, params={"from": "2026-05-01", "to": "2027-07-01"}, headers=admin_headers)
    assert r.status_code == 422 and r.json()["detail"].startswith("to:")


async def test_duty_ends_only_where_the_duty_record_says_so(
    server: ServerProcess, api: httpx.Client, admin_headers: dict
) -> None:
    """A new token for a new phone keeps the responder on duty, and so keeps the stretch open;
    deactivating ends both. Across the database, a stretch is open exactly for those on duty."""
    person = on_duty_somewhere(api, admin_headers)
    rid = uuid.UUID(person["id"])
    open_sql = "SELECT count(*) AS n FROM duty_sessions WHERE responder_id = $1 AND ended_at IS NULL"
    r = api.post(f"/v1/responders/{rid}/token", headers=bearer(person["token"]))
    assert r.status_code == 201, r.text
    assert api.get(f"/v1/responders/{rid}", headers=admin_headers).json()["on_duty"] is True
    assert await db_rows(server, open_sql, rid) == [{"n": 1}]
    assert api.post(f"/v1/responders/{rid}/deactivate", headers=admin_headers).status_code == 200
    assert await db_rows(server, open_sql, rid) == [{"n": 0}]
    mismatched = await db_rows(
        server,
        "SELECT r.id FROM responders r"
        " LEFT JOIN duty_sessions d ON d.responder_id = r.id AND d.ended_at IS NULL"
        " WHERE (r.on_duty AND r.active) <> (d.id IS NOT NULL)",
    )
    assert mismatched == []


def month_start(moment: datetime) -> datetime:
    local = moment.astimezone(SHANGHAI)
    return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def months_back(n: int) -> datetime:
    """Midnight on the 1st, `n` months before this month, in Shanghai."""
    start = month_start(datetime.now(UTC))
    for _ in range(n):
        start = month_start(start - timedelta(days=1))
    return start


def typed(row: dict[str, str]) -> dict[str, Any]:
    """A CSV row with the JSON export's types (empty field: null)."""
    out: dict[str, Any] = {}
    for name, value in row.items():
        if value == "":
            out[name] = None
        elif name in INTEGERS:
            out[name] = int(value)
        elif name in FLOATS:
            out[name] = float(value)
        else:
            out[name] = value
    return out


def export(api: httpx.Client, headers: dict[str, str], **params: str) -> tuple[list[dict], dict[str, Any]]:
    """The export as CSV rows (typed back) and as the JSON document; the two must agree."""
    as_csv = api.get("/v1/reports/service", params={**params, "format": "csv"}, headers=headers)
    assert as_csv.status_code == 200 and as_csv.headers["content-type"].startswith("text/csv"), as_csv.text
    assert "attachment" in as_csv.headers["content-disposition"]
    as_json = api.get("/v1/reports/service", params={**params, "format": "json"}, headers=headers)
    assert as_json.status_code == 200, as_json.text
    document = as_json.json()
    rows = [typed(r) for r in csv.DictReader(io.StringIO(as_csv.text))]
    assert rows == document["rows"]
    assert as_csv.text.splitlines()[0].split(",") == document["columns"]
    return rows, document


async def test_the_monthly_export_round_trips_and_adds_up_to_the_record(
    server: ServerProcess, api: httpx.Client, admin_headers: dict
) -> None:
    tag = secrets.token_hex(3)
    futian = f"futian/shatou/t{tag}"
    anna = register(api, admin_headers, name='Wang "Anna", 王', team=futian)
    bo = register(api, admin_headers, name="Bo", team=futian)
    gone = register(api, admin_headers, name="Chen Gone", external_id=f"GONE-{tag}", team=f"nanshan/t{tag}")
    m3, m2, m1, m0 = months_back(3), months_back(2), months_back(1), months_back(0)
    h = timedelta(hours=1)
    backdated = {
        anna["id"]: [(m2 - 2 * h, m2 + 3 * h), (m1 + 10 * 24 * h, m1 + 10 * 24 * h + 1.5 * h)],
        bo["id"]: [(m3 + timedelta(minutes=45), m3 + timedelta(minutes=90)), (m1 + 24 * h, m1 + 48 * h)],
        gone["id"]: [(m2 + 100 * h, m2 + 110 * h)],
    }
    for rid, stretches in backdated.items():
        for started, ended in stretches:
            await fetch(
                server.database_url,
                "INSERT INTO duty_sessions (responder_id, started_at, ended_at) VALUES ($1, $2, $3)",
                uuid.UUID(rid),
                started,
                ended,
            )
    await fetch(
        server.database_url, "UPDATE responders SET deleted_at = now() WHERE id = $1", uuid.UUID(gone["id"])
    )
    # this month: Anna turns out to a real incident and reaches the patient
    LAST_SPOT[anna["id"]] = remote_spot()
    lat, lng = LAST_SPOT[anna["id"]]
    me = bearer(anna["token"])
    assert api.put(f"/v1/responders/{anna['id']}/duty", json={"on_duty": True}, headers=me).status_code == 200
    r = api.post(
        "/v1/locations", json={"lat": lat + 0.0003, "lng": lng, "ts": iso(), "accuracy_m": 5}, headers=me
    )
    assert r.status_code == 200 and r.json()["stored"] == 1, r.text
    await turn_out(server, api, admin_headers, anna, arrive=True)
    assert (
        api.put(f"/v1/responders/{anna['id']}/duty", json={"on_duty": False}, headers=me).status_code == 200
    )

    coordinator = role(api, admin_headers, "coordinator")
    window = {"from": m3.isoformat(), "to": datetime.now(UTC).isoformat()}
    rows, document = export(api, coordinator, **window)
    assert document["by"] == "responder" and document["timezone"] == "Asia/Shanghai"
    assert document["rule"] == RULE
    label = [f"{m:%Y-%m}" for m in (m3, m2, m1, m0)]
    ours = [r for r in rows if r["responder_id"] in backdated]
    past = [(r["month"], r["responder_id"], r["on_duty_s"]) for r in ours if r["month"] != label[3]]
    assert sorted(past) == sorted(
        [
            (label[0], anna["id"], 7200.0),  # the stretch over midnight on the 1st: 2 h before ...
            (label[1], anna["id"], 10800.0),  # ... and 3 h after
            (label[2], anna["id"], 5400.0),
            (label[0], bo["id"], 2700.0),
            (label[2], bo["id"], 86400.0),
            (label[1], gone["id"], 36000.0),
        ]
    )
    [erased] = [r for r in ours if r["responder_id"] == gone["id"]]
    assert (erased["name"], erased["external_id"], erased["team_path"]) == (
        None,
        None,
        f"shenzhen/nanshan/t{tag}",
    )
    [named] = [r for r in ours if r["responder_id"] == anna["id"] and r["month"] == label[0]]
    assert (named["name"], named["external_id"]) == (anna["name"], anna["external_id"])
    [now_row] = [r for r in ours if r["month"] == label[3]]
    assert now_row["responder_id"] == anna["id"] and (now_row["incidents_attended"], now_row["arrivals"]) == (
        1,
        1,
    )

    # each responder's months add up to the endpoint's figures for the whole window
    for rid in {r["responder_id"] for r in rows}:
        record = service(api, rid, coordinator, **window)
        theirs = [r for r in rows if r["responder_id"] == rid]
        for name in FIGURES:
            total = sum(r[name] for r in theirs)
            assert total == pytest.approx(record[name], abs=0.01 * len(theirs)), (rid, name)

    # per team: the responders' rows of that team and month, added up
    teams, team_document = export(api, admin_headers, **window, by="team")
    assert team_document["columns"][:3] == ["month", "team_path", "responders"]
    expected: dict[tuple[str, str | None], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for r in rows:
        bucket = expected[(r["month"], r["team_path"])]
        bucket["responders"] += 1
        for name in FIGURES:
            bucket[name] += r[name]
    assert {(t["month"], t["team_path"]) for t in teams} == set(expected)
    for t in teams:
        bucket = expected[(t["month"], t["team_path"])]
        assert t["responders"] == bucket["responders"]
        for name in FIGURES:
            assert t[name] == pytest.approx(bucket[name], abs=0.01 * t["responders"]), (t, name)
    [futian_m2] = [t for t in teams if t["team_path"] == f"shenzhen/{futian}" and t["month"] == label[2]]
    assert (futian_m2["responders"], futian_m2["on_duty_s"]) == (2, 5400.0 + 86400.0)

    # rows are per calendar month: a window inside one month gives one month's rows
    inside, _ = export(
        api, admin_headers, **{"from": (m1 + 24 * h).isoformat(), "to": (m1 + 36 * h).isoformat()}
    )
    assert [(r["month"], r["responder_id"], r["on_duty_s"]) for r in inside] == [
        (label[2], bo["id"], 43200.0)
    ]
    assert json.loads(json.dumps(inside)) == inside
