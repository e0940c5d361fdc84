"""A scripted week of the rescue circle, played through the real service, and its hand count.

Two districts (West, East), each with a North and a South street, around a spot nobody else uses;
15 responders in community teams (one without a team, one in a team naming no district of the
city); seven incidents on six days: accepts, declines, an expiry, stand-downs of pending alerts,
arrivals tapped on the phone (`status` frames: `on_scene_at`, source `manual`), an incident closed
while its responder was still on the way (ran for nothing), one incident outside every district.

Everything happens now, through the API and the websocket, on stores of its own (the dispatch clock
expires the silent alert). The days are in the past, so afterwards each incident is moved to its
scripted time in SQL: `incidents.created_at` / `closed_at`, every time of its alerts (`opened_at`,
the partition key, moves the rows to the right month's partition) and its events' `ts`, all by the
same shift. Then the times a test cannot wait for are written as scripted: the seconds from an alert
to its answer, to the AED taken off the wall (no API sets `aed_picked_up_at` before the arrival
geofences) and to the tap on scene (a late arrival is 7 minutes). The week's duty shifts replace the
seconds-long sessions the API opened (written as rows: an 8-hour shift cannot be played).

`expected(by, ...)` is the hand count: the same figures counted in plain Python from the script.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import statistics
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from shapely.geometry import box
from websockets.sync.client import connect

from core.db import Database
from simulator.city import City, District, Street
from simulator.service import save_city
from tests.support.db import fetch, stores_of_its_own
from tests.support.people import bearer, on_duty_at
from tests.support.server import ServerProcess

ZONE = ZoneInfo("Asia/Shanghai")
ORIGIN = (31.0, 104.0)  # where the city is: its two districts meet on this meridian
ALERT_TTL_S = 8  # the silent alert expires this long after it went out
SERVER_SETTINGS = {
    # every responder in reach is alerted (they are 2-3 per incident: 4 are needed for a 90 % chance
    # that one of them accepts at 0.5), and the first accept stands the others down
    "DISPATCH_ACCEPTANCE_PROBABILITY": "0.5",
    "DISPATCH_ACCEPTANCE_PRIOR_STRENGTH": "1e9",
    "DISPATCH_TARGET_CPR": "1",
    "DISPATCH_TARGET_AED": "0",
    "DISPATCH_ALERT_TTL_S": str(ALERT_TTL_S),
    "DISPATCH_ANSWER_TIMEOUT_S": "600",
    "DISPATCH_ESCALATION_INTERVAL_S": "3600",  # the reach never widens: nobody else gets alerted
}


@dataclass(frozen=True)
class Answer:
    """What one alerted person does: `accept`, `decline` or `silent` (the alert expires); seconds
    after the alert to the answer, to taking an AED and to the tap on scene (None: never)."""

    kind: str
    after_s: float | None = None
    aed_s: float | None = None
    on_scene_s: float | None = None


@dataclass(frozen=True)
class Scripted:
    name: str
    day: int  # days after the window's start (the city's midnight)
    hour: int
    spot: tuple[float, float]  # degrees north and east of ORIGIN
    district: str | None
    street: str | None
    answers: dict[str, Answer]  # everyone in reach; whoever is not named here is stood down


@dataclass(frozen=True)
class Person:
    team: str | None  # below the city ('west/north/c1'); stored as 'shenzhen/west/north/c1'
    near: str  # the incident they stand by
    north_m: float
    east_m: float


PEOPLE = {
    "w1": Person("west/north/c1", "I1", 80, 0),
    "w2": Person("west/north/c1", "I1", 0, 110),
    "w3": Person("west/south/c1", "I1", -140, 0),
    "w4": Person("west/north/c1", "I2", 90, 0),
    "w5": Person("east/north/c1", "I2", 0, -120),
    "w6": Person("west/south/c1", "I3", 100, 0),
    "w7": Person("west/south/c1", "I3", 0, 130),
    "e1": Person("east/north/c1", "I4", 70, 0),
    "e2": Person("east/north/c1", "I4", 0, 120),
    "e3": Person("east/south/c1", "I5", 60, 0),
    "e4": Person(None, "I5", 0, -150),
    "e5": Person("east/south/c1", "I6", 80, 0),
    "e6": Person("east/south/c1", "I6", -120, 0),
    "o1": Person("nowhere/c1", "I7", 50, 0),
    "o2": Person("nowhere/c1", "I7", 800, 800),  # never in reach of anything: on duty only
}

INCIDENTS = [
    Scripted("I1", 1, 10, (0.01, -0.03), "West", "North", {
        "w2": Answer("decline", 20), "w1": Answer("accept", 30, aed_s=150, on_scene_s=240)}),
    Scripted("I2", 2, 14, (0.01, -0.01), "West", "North", {"w4": Answer("accept", 45, on_scene_s=420)}),
    Scripted("I3", 3, 9, (-0.01, -0.02), "West", "South", {"w6": Answer("accept", 60)}),  # closed first
    Scripted("I4", 4, 20, (0.01, 0.01), "East", "North", {
        "e1": Answer("decline", 10), "e2": Answer("silent")}),
    Scripted("I5", 5, 8, (0.01, 0.03), "East", "North", {"e3": Answer("accept", 25, on_scene_s=280)}),
    Scripted("I6", 6, 16, (-0.01, 0.02), "East", "South", {
        "e5": Answer("accept", 90, aed_s=200, on_scene_s=330)}),
    Scripted("I7", 6, 11, (0.05, 0.0), None, None, {"o1": Answer("accept", 15, on_scene_s=100)}),
]  # fmt: skip


@dataclass(frozen=True)
class Shift:
    person: str
    start: datetime
    end: datetime | None  # None: still on duty


def shifts(window_start: datetime, window_end: datetime) -> list[Shift]:
    """Everyone works 8 hours around their incident (from 2 h before it); w1 also worked across the
    window's start (3 h inside it), e2 three days before it (not counted), o2 the last day 09-17
    and across the turn of a month before the window (the night into the 1st, 22:00-03:00), and e1
    is still on duty since 2 h before the window's end."""
    out, turn = [], turn_of_month(window_start)
    at = {s.name: incident_time(window_start, s) for s in INCIDENTS}
    for name, person in PEOPLE.items():
        if name != "o2":
            start = at[person.near] - timedelta(hours=2)
            out.append(Shift(name, start, start + timedelta(hours=8)))
    out += [
        Shift("w1", window_start - timedelta(hours=2), window_start + timedelta(hours=3)),
        Shift("e2", window_start - timedelta(days=3), window_start - timedelta(days=3, hours=-8)),
        Shift("o2", window_start + timedelta(days=6, hours=9), window_start + timedelta(days=6, hours=17)),
        Shift("e1", window_end - timedelta(hours=2), None),
        Shift("o2", turn - timedelta(hours=2), turn + timedelta(hours=3)),
    ]
    return out


def turn_of_month(window_start: datetime) -> datetime:
    """The city's midnight starting the month 10 days before the window: always before it, and
    inside a window that starts 45 days before it."""
    return (window_start - timedelta(days=10)).replace(day=1)


def incident_time(window_start: datetime, s: Scripted) -> datetime:
    return (window_start + timedelta(days=s.day)).replace(hour=s.hour)


def the_week() -> tuple[datetime, datetime]:
    """The last seven whole days on the city's clock: [a week ago at midnight, today at midnight)."""
    today = datetime.now(ZONE).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=7), today


def offset(lat: float, lng: float, north_m: float, east_m: float) -> tuple[float, float]:
    return lat + north_m / 111_195.0, lng + east_m / (111_195.0 * math.cos(math.radians(lat)))


def spot_of(s: Scripted) -> tuple[float, float]:
    return ORIGIN[0] + s.spot[0], ORIGIN[1] + s.spot[1]


def the_city() -> City:
    """West and East (0.04° wide, 0.04° tall), each cut into a North and a South street."""
    lat, lng = ORIGIN

    def district(name: str, zh: str, west: float, east: float) -> District:
        streets = (
            Street("North", 1000, box(west, lat, east, lat + 0.02), "北街道"),
            Street("South", 1000, box(west, lat - 0.02, east, lat), "南街道"),
        )
        return District(name, 2000, box(west, lat - 0.02, east, lat + 0.02), zh, streets)

    west, east = district("West", "西区", lng - 0.04, lng), district("East", "东区", lng, lng + 0.04)
    return City("Week", (west, east))


@dataclass
class Played:
    window: tuple[datetime, datetime]
    people: dict[str, dict[str, Any]] = field(default_factory=dict)
    incident_ids: dict[str, str] = field(default_factory=dict)


async def _store_city(database_url: str) -> None:
    db = Database(database_url)
    try:
        async with db.sessions() as session:
            await save_city(session, the_city())
            await session.commit()
    finally:
        await db.dispose()


def _wait_for(http: httpx.Client, alert_id: str, headers: dict[str, str], status: str) -> None:
    deadline = time.monotonic() + ALERT_TTL_S + 20
    while time.monotonic() < deadline:
        seen = http.get(f"/v1/alerts/{alert_id}", headers=headers).json().get("status")
        if seen == status:
            return
        time.sleep(0.3)
    raise AssertionError(f"alert {alert_id} never became {status} (last {seen})")


def _tap_on_scene(http: httpx.Client, ws_url: str, token: str, alert_id: str) -> None:
    """The responder taps "on scene" in the app: a `status` frame over the real websocket, which
    stays open until the alert says so."""
    with connect(f"{ws_url}/v1/ws/responder", subprotocols=["bearer", token]) as ws:  # type: ignore[list-item]
        ws.send(json.dumps({"type": "status", "alert_id": alert_id, "status": "on_scene"}))
        _wait_for(http, alert_id, bearer(token), "on_scene")


def play(http: httpx.Client, ws_url: str, database_url: str, admin: dict[str, str]) -> Played:
    """Play the week now through the service, then move it to its days (see the module's doc)."""
    played = Played(the_week())
    asyncio.run(_store_city(database_url))
    token = http.post("/v1/tokens", json={"role": "dispatcher", "label": "desk"}, headers=admin)
    desk = bearer(token.json()["token"])
    by_name = {s.name: s for s in INCIDENTS}
    for name, person in PEOPLE.items():
        near = spot_of(by_name[person.near])
        fields = {"team": person.team} if person.team else {}
        played.people[name] = on_duty_at(http, admin, *offset(*near, person.north_m, person.east_m), **fields)
    for s in INCIDENTS:
        lat, lng = spot_of(s)
        body = {"lat": lat, "lng": lng, "category": "cardiac_arrest"}
        opened = http.post("/v1/incidents", json=body, headers=desk)
        assert opened.status_code == 201, opened.text
        incident = opened.json()
        played.incident_ids[s.name] = incident["id"]
        alert_of = {a["responder_id"]: a["alert_id"] for a in incident["alerts"]}
        in_reach = {n for n, p in PEOPLE.items() if p.near == s.name and n != "o2"}
        assert set(alert_of) == {played.people[n]["id"] for n in in_reach}, (s.name, incident["alerts"])
        for who, answer in s.answers.items():
            alert_id, me = alert_of[played.people[who]["id"]], bearer(played.people[who]["token"])
            if answer.kind == "silent":
                _wait_for(http, alert_id, me, "expired")
                continue
            r = http.post(f"/v1/alerts/{alert_id}/answer", json={"response": answer.kind}, headers=me)
            assert r.status_code == 200, r.text
            if answer.on_scene_s is not None:
                _tap_on_scene(http, ws_url, played.people[who]["token"], alert_id)
        closed = http.post(f"/v1/incidents/{incident['id']}/close", json={}, headers=desk)
        assert closed.status_code == 200, closed.text
    asyncio.run(_move_to_the_week(database_url, played))
    return played


@contextlib.contextmanager
def week_server(
    app_env: dict[str, str], store_env: dict[str, str], admin: dict[str, str]
) -> Iterator[tuple[ServerProcess, Played]]:
    """A server on stores of its own (its clock expires the silent alert) with the week played."""
    with (
        stores_of_its_own(store_env["DATABASE_URL"], "programme") as own,
        ServerProcess(env={**app_env, **own, **SERVER_SETTINGS}).start() as server,
    ):
        with httpx.Client(base_url=server.url, timeout=30) as http:
            played = play(http, server.ws_url, server.database_url, admin)
        yield server, played


async def _move_to_the_week(database_url: str, played: Played) -> None:
    start, end = played.window
    ids = {n: uuid.UUID(p["id"]) for n, p in played.people.items()}
    for s in INCIDENTS:
        incident_id = uuid.UUID(played.incident_ids[s.name])
        at = incident_time(start, s)
        (row,) = await fetch(database_url, "SELECT created_at FROM incidents WHERE id = $1", incident_id)
        shift = at - row["created_at"]
        await fetch(database_url, MOVE_INCIDENT, incident_id, shift)
        for who, answer in s.answers.items():
            if answer.kind != "silent":
                times = [_after(at, x) for x in (answer.after_s, answer.aed_s, answer.on_scene_s)]
                await fetch(database_url, RETIME_ALERT, incident_id, ids[who], *times)
    await fetch(database_url, "DELETE FROM duty_sessions WHERE responder_id = ANY($1)", list(ids.values()))
    for shift_ in shifts(start, end):
        await fetch(
            database_url,
            "INSERT INTO duty_sessions (responder_id, started_at, ended_at) VALUES ($1, $2, $3)",
            ids[shift_.person], shift_.start, shift_.end,
        )  # fmt: skip


def _after(at: datetime, seconds: float | None) -> datetime | None:
    return None if seconds is None else at + timedelta(seconds=seconds)


MOVE_INCIDENT = """
WITH i AS (UPDATE incidents SET created_at = created_at + $2::interval, closed_at = closed_at + $2::interval
           WHERE id = $1),
     a AS (UPDATE alerts SET opened_at = opened_at + $2::interval, created_at = opened_at + $2::interval,
                  expires_at = expires_at + $2::interval, updated_at = updated_at + $2::interval,
                  answered_at = answered_at + $2::interval, delivered_at = delivered_at + $2::interval,
                  socket_at = socket_at + $2::interval, ladder_due_at = ladder_due_at + $2::interval,
                  en_route_at = en_route_at + $2::interval, on_scene_at = on_scene_at + $2::interval,
                  aed_picked_up_at = aed_picked_up_at + $2::interval
           WHERE incident_id = $1)
UPDATE incident_events SET ts = ts + $2::interval WHERE incident_id = $1
"""
RETIME_ALERT = """
UPDATE alerts SET answered_at = $3, aed_picked_up_at = $4, on_scene_at = $5
WHERE incident_id = $1 AND responder_id = $2
"""


# --- the hand count -----------------------------------------------------------------------------
def _month(at: datetime) -> str:
    return at.astimezone(ZONE).strftime("%Y-%m")


def _months(start: datetime, end: datetime) -> list[tuple[str, datetime, datetime]]:
    out, first = [], start.astimezone(ZONE).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    while first < end:
        following = (first + timedelta(days=32)).replace(day=1)
        out.append((first.strftime("%Y-%m"), max(first, start), min(following, end)))
        first = following
    return out


def _team_place(team: str | None, by: str) -> str:
    """The district / street / team group of a responder's duty, by their team's path."""
    if by == "total":
        return "total"
    parts = (team or "").split("/")
    places = {"west": "West", "east": "East"}
    if by == "team":
        return f"shenzhen/{team}" if team else "outside"
    if parts[0] not in places:
        return "outside"
    return places[parts[0]] if by == "district" else f"{places[parts[0]]}/{parts[1].title()}"


def _incident_place(s: Scripted, by: str) -> str:
    if by == "total":
        return "total"
    if s.district is None:
        return "outside"
    return s.district if by == "district" else f"{s.district}/{s.street}"


def expected(
    by: str, played: Played, window: tuple[datetime, datetime] | None = None
) -> dict[str, dict[str, Any]]:
    """Each group's figures, counted by hand from the script (keys as the report names them) over
    the week or a `window` holding it; `by="total"`: the whole window as one group, "total"."""
    start, end = window or played.window
    facts: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"incidents": set(), "r5": set(), "a5": set(), "alerts": 0, "answered": 0, "accepted": 0,
                 "accept_s": [], "ran": 0, "active": set(), "duty_s": 0.0}
    )  # fmt: skip
    for s in INCIDENTS:
        at = incident_time(played.window[0], s)
        alerted = [n for n, p in PEOPLE.items() if p.near == s.name and n != "o2"]
        arrivals = [a for a in s.answers.values() if a.on_scene_s is not None]
        in_time = any(a.on_scene_s <= 300 for a in arrivals)  # type: ignore[operator]
        aed_in_time = any(a.aed_s is not None and a.on_scene_s <= 300 for a in arrivals)  # type: ignore[operator]
        for who in alerted:
            answer = s.answers.get(who)
            if by == "team":
                group = _team_place(PEOPLE[who].team, by)
            else:
                group = _month(at) if by == "month" else _incident_place(s, by)
            f = facts[group]
            f["incidents"].add(s.name)
            if in_time:
                f["r5"].add(s.name)
            if aed_in_time:
                f["a5"].add(s.name)
            f["alerts"] += 1
            if answer is not None:  # declined, expired or accepted; the others were stood down
                f["answered"] += 1
            if answer is not None and answer.kind == "accept":
                f["accepted"] += 1
                f["accept_s"].append(answer.after_s)
                f["ran"] += answer.on_scene_s is None  # the incident closed while they were on the way
    months = _months(start, end) if by == "month" else [("", start, end)]
    for shift in shifts(*played.window):
        for label, m_start, m_end in months:
            seconds = (min(shift.end or end, m_end) - max(shift.start, m_start)).total_seconds()
            if seconds > 0:
                f = facts[label if by == "month" else _team_place(PEOPLE[shift.person].team, by)]
                f["active"].add(shift.person)
                f["duty_s"] += seconds
    return {group: _figures(f) for group, f in facts.items()}


def _share(part: int, whole: int, digits: int = 4) -> float | None:
    return None if whole == 0 else round(part / whole, digits)


def _figures(f: dict[str, Any]) -> dict[str, Any]:
    n = len(f["incidents"])
    return {
        "incidents": n,
        "responder_5min": _share(len(f["r5"]), n),
        "aed_5min": _share(len(f["a5"]), n),
        "alerts": f["alerts"],
        "answered": f["answered"],
        "accepted": f["accepted"],
        "acceptance_rate": _share(f["accepted"], f["answered"]),
        "median_accept_s": statistics.median(f["accept_s"]) if f["accept_s"] else None,
        "alerts_per_incident": _share(f["alerts"], n, 2),
        "ran_for_nothing": f["ran"],
        "active_responders": len(f["active"]),
        "on_duty_hours": round(f["duty_s"] / 3600, 2),
    }
