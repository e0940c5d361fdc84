"""Dispatch end to end: real app, PostGIS, Redis, HTTP and websockets."""

from __future__ import annotations

import asyncio
import json
import math
import random
import secrets
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest

from core.config import Settings
from core.db import Database
from core.redis import Keys, connect_redis
from dispatch.context import DispatchContext
from dispatch.escalation import escalate
from dispatch.fanout import Fanout
from dispatch.models import Incident
from geo.distance import haversine_m
from geo.reach import ReachModel
from responders.store import LiveLocationStore
from tests.support.db import stores_of_its_own
from tests.support.people import bearer, certificate, iso, on_duty_at, pinned_acceptance, register
from tests.support.phones import Console, Phone
from tests.support.server import ServerProcess, on_single_and_cluster

pytestmark = pytest.mark.integration
MODEL = ReachModel()


def remote_spot() -> tuple[float, float]:
    """Somewhere far from every other test's responders and AEDs (the database is shared)."""
    return random.uniform(-45, 45), random.uniform(-170, 170)


def offset(lat: float, lng: float, north_m: float, east_m: float) -> tuple[float, float]:
    return lat + north_m / 111_195.0, lng + east_m / (111_195.0 * math.cos(math.radians(lat)))


def round_fix(lat: float, lng: float) -> tuple[float, float]:
    """A position as the live store keeps it (to the micro-degree)."""
    return round(lat, 6), round(lng, 6)


def closed_now_hours() -> str:
    """Opening hours that exclude the current hour in the city's time zone."""
    h = datetime.now(ZoneInfo("Asia/Shanghai")).hour
    start = (h + 2) % 24 if h < 20 else 1
    return f"Mo-Su {start:02d}:00-{start + 1:02d}:00"


@pytest.fixture(scope="module")
def wide_server(
    app_env: dict[str, str], store_env: dict[str, str], redis_url_each: str
) -> Iterator[ServerProcess]:
    """Alerts everyone in reach up to a cap of 12 (acceptance 5 %), so the story can check the set;
    on the single Redis, then on the cluster. Configured otherwise than the session's servers, so on
    a database of its own: their clocks would step its incident with their cap (20)."""
    with stores_of_its_own(store_env["DATABASE_URL"], "wide") as own:
        env = {
            **app_env,
            **own,
            **pinned_acceptance(0.05),
            "REDIS_URL": redis_url_each,
            "DISPATCH_ALERT_CAP": "12",
        }
        with ServerProcess(env=env).start() as server:
            yield server


def dispatcher(http: httpx.Client, admin: dict[str, str]) -> dict[str, str]:
    r = http.post("/v1/tokens", json={"role": "dispatcher", "label": "desk"}, headers=admin)
    return bearer(r.json()["token"])


async def test_story_alerted_set_roles_acks_and_close(wide_server: ServerProcess, admin_headers) -> None:
    http = httpx.Client(base_url=wide_server.url, timeout=30)
    desk = dispatcher(http, admin_headers)
    lat, lng = remote_spot()
    rng = random.Random(7)
    crowd = []
    for i in range(30):
        north, east = rng.uniform(-900, 900), rng.uniform(-900, 900)
        mode = "ebike" if i % 3 == 0 else "walk"
        crowd.append(
            (on_duty_at(http, admin_headers, *offset(lat, lng, north, east), mode=mode), north, east)
        )
    beside = on_duty_at(http, admin_headers, *offset(lat, lng, 150, 150), mode="ebike")
    # never alerted: off duty, lapsed certificate, never located
    off = on_duty_at(http, admin_headers, *offset(lat, lng, 10, 0))
    http.put(f"/v1/responders/{off['id']}/duty", json={"on_duty": False}, headers=admin_headers)
    lapsed = on_duty_at(http, admin_headers, *offset(lat, lng, 0, 10))
    old = certificate(
        valid_from=datetime.now().date() - timedelta(days=800),
        valid_until=datetime.now().date() - timedelta(days=1),
    )
    http.patch(f"/v1/responders/{lapsed['id']}", json={"certificates": [old]}, headers=admin_headers)
    silent = register(http, admin_headers)
    http.put(f"/v1/responders/{silent['id']}/duty", json={"on_duty": True}, headers=admin_headers)
    # AEDs: one closed right now beside the patient, one open beside `beside`
    closed = http.post(
        "/v1/aeds",
        json={"name": "Closed office", "lat": lat, "lng": lng + 2e-5, "opening_hours": closed_now_hours()},
        headers=admin_headers,
    ).json()
    a_lat, a_lng = offset(lat, lng, 152, 152)
    wall = http.post(
        "/v1/aeds",
        json={"name": "Metro exit B", "lat": a_lat, "lng": a_lng, "opening_hours": "24/7"},
        headers=admin_headers,
    ).json()

    everyone = [p for p, _, _ in crowd] + [beside, off, lapsed, silent]
    phones = [Phone(wide_server.ws_url, p["token"]) for p in everyone]
    await asyncio.gather(*(ph.__aenter__() for ph in phones))
    try:
        async with Console(wide_server.ws_url, desk["Authorization"].split()[1]) as console:
            r = http.post(
                "/v1/incidents",
                json={"lat": lat, "lng": lng, "category": "cardiac_arrest", "address": "Gate 3"},
                headers=desk,
            )
            assert r.status_code == 201, r.text
            incident = r.json()
            # brute force: who is eligible, ranked by ETA; who could bring the open AED in time,
            # ranked by when it would reach the patient
            etas, fetches = [], []
            for person, north, east in [*crowd, (beside, 150, 150)]:
                p_lat, p_lng = round_fix(*offset(lat, lng, north, east))
                eta = MODEL.eta_s(haversine_m(lat, lng, p_lat, p_lng), person["mode"])
                if eta <= 300:
                    etas.append((eta, person["id"]))
                    to_aed, aed_to_patient = (
                        haversine_m(p_lat, p_lng, a_lat, a_lng),
                        haversine_m(a_lat, a_lng, lat, lng),
                    )
                    fetch = MODEL.fetch_eta_s(to_aed, aed_to_patient, person["mode"])
                    if fetch <= 300:
                        fetches.append((fetch, person["id"]))
            etas.sort()
            fetches.sort()
            # At 5 % acceptance no batch reaches a 90 % chance of an AED runner, so the cap decides:
            # everyone who could bring the AED first (soonest AED first), then the nearest others.
            runners = [rid for _, rid in fetches]
            expected = (runners + [rid for _, rid in etas if rid not in runners])[:12]
            assert fetches[0][1] == beside["id"] and len(runners) < 12
            assert [a["responder_id"] for a in incident["alerts"]] == expected
            # roles are decided at the accept: for now, who may be asked to bring which AED
            assert {a["role"] for a in incident["alerts"]} == {"undecided"}
            assert all(a["aed_id"] is None for a in incident["alerts"])
            options = {
                a["responder_id"]: a["aed_option_id"] for a in incident["alerts"] if a["may_fetch_aed"]
            }
            assert options == dict.fromkeys(runners, wall["id"])
            direct = dict((rid, eta) for eta, rid in etas)
            for a in incident["alerts"]:
                assert a["eta_s"] == pytest.approx(direct[a["responder_id"]], abs=0.1)
            assert [a["id"] for a in incident["aeds"]] == [wall["id"]]  # the closed one is not considered
            assert closed["id"] not in str(incident)
            assert incident["coverage"]["covered"] is True
            assert incident["coverage"]["fastest_eta_s"] == pytest.approx(etas[0][0], abs=0.1)
            assert incident["coverage"]["aed_eta_s"] == pytest.approx(fetches[0][0], abs=0.1)

            alerted = {a["responder_id"]: a for a in incident["alerts"]}
            cpr = [rid for rid in expected if rid not in runners]
            frames = {}
            for person, phone in zip(everyone, phones, strict=True):
                if person["id"] in alerted:
                    frames[person["id"]] = await phone.next(type_="alert")
                else:
                    assert await phone.silent(0.2), person["id"]
            frame = frames[beside["id"]]
            assert frame["alert_id"] == alerted[beside["id"]]["alert_id"] and frame["role"] == "undecided"
            assert frame["may_fetch_aed"] is True and frame["aed_option"]["id"] == wall["id"]
            assert frame["aed_option"]["name"] == "Metro exit B" and "aed" not in frame
            assert frame["category"] == "cardiac_arrest"
            assert frames[cpr[0]]["may_fetch_aed"] is False and "aed_option" not in frames[cpr[0]]
            assert (
                "address" not in frame
                and haversine_m(lat, lng, frame["approx"]["lat"], frame["approx"]["lng"]) < 600
            )
            await console.wait_for(incident["id"], "delivered")
            # the live frame (built in memory at opening) is the one Postgres replays on reconnect
            async with Phone(wide_server.ws_url, beside["token"]) as second:
                assert await second.next(type_="alert") == frame

            me = phones[everyone.index(beside)]
            await me.send({"type": "ack", "alert_id": frame["alert_id"], "response": "accept"})
            exact = await me.next(type_="incident")
            assert (exact["lat"], exact["lng"], exact["address"]) == (
                pytest.approx(lat),
                pytest.approx(lng),
                "Gate 3",
            )
            # the first acceptor, beside the AED, brings it
            assert exact["role"] == "fetch_aed" and exact["aed"]["id"] == wall["id"]
            assert exact["eta_s"] == pytest.approx(fetches[0][0], abs=1)
            accepted = await console.wait_for(incident["id"], "accepted")
            assert accepted["data"]["responder_id"] == beside["id"]
            decided = await console.wait_for(incident["id"], "role_assigned")
            assert decided["data"]["role"] == "fetch_aed" and decided["data"]["aed_id"] == wall["id"]
            # misuse: twice, someone else's alert, malformed frames; the socket stays open
            await me.send({"type": "ack", "alert_id": frame["alert_id"], "response": "accept"})
            assert (await me.next(type_="error"))["code"] == 409
            other = next(rid for rid in alerted if rid != beside["id"])
            await me.send({"type": "ack", "alert_id": alerted[other]["alert_id"], "response": "decline"})
            assert (await me.next(type_="error"))["code"] == 403
            await me.send("{not json")
            assert (await me.next(type_="error"))["code"] == 400
            await me.send({"type": "ack", "alert_id": "nope", "response": "accept"})
            assert (await me.next(type_="error"))["field"] == "alert_id"
            await me.send({"type": "teleport"})
            assert "type" in (await me.next(type_="error"))["message"]
            for status in ("en_route", "on_scene"):
                await me.send({"type": "status", "alert_id": frame["alert_id"], "status": status})
                await console.wait_for(incident["id"], status)
                mark = await me.next(type_="mark")  # the phone hears its tap back (issue 22)
                assert (mark["mark"], mark["source"]) == (status, "manual")

            declined_id = cpr[0]
            their = phones[everyone.index(next(p for p in everyone if p["id"] == declined_id))]
            await their.send(
                {"type": "ack", "alert_id": alerted[declined_id]["alert_id"], "response": "decline"}
            )
            await console.wait_for(incident["id"], "declined")
            # the cap (12) is reached: the decline is not replaced
            assert all(await asyncio.gather(*(ph.silent(0.3) for ph in phones if ph is not their)))

            listed = http.get("/v1/incidents", params={"status": "open"}, headers=desk).json()
            assert incident["id"] in [i["id"] for i in listed]
            closed_inc = http.post(
                f"/v1/incidents/{incident['id']}/close", json={"reason": "ambulance arrived"}, headers=desk
            )
            assert closed_inc.status_code == 200
            await console.wait_for(incident["id"], "closed")
            assert (await me.next(type_="cancel"))["incident_id"] == incident["id"]
            pending = phones[everyone.index(next(p for p in everyone if p["id"] == cpr[1]))]
            assert (await pending.next(type_="cancel"))["alert_id"] == alerted[cpr[1]]["alert_id"]
            await pending.send({"type": "ack", "alert_id": alerted[cpr[1]]["alert_id"], "response": "accept"})
            err = await pending.next(type_="error")
            assert err["code"] == 409 and "closed" in err["message"]

            detail = http.get(f"/v1/incidents/{incident['id']}", headers=desk).json()
            kinds = [e["kind"] for e in detail["events"]]
            assert kinds[0] == "opened" and kinds[-1] == "closed"
            assert kinds.count("alert_sent") == len(incident["alerts"]) == 12
            for kind in ("delivered", "accepted", "declined", "en_route", "on_scene"):
                assert kind in kinds
            assert [e["seq"] for e in detail["events"]] == sorted(e["seq"] for e in detail["events"])
            assert incident["id"] not in [
                i["id"] for i in http.get("/v1/incidents", params={"status": "open"}, headers=desk).json()
            ]
    finally:
        await asyncio.gather(*(ph.__aexit__() for ph in phones))
        http.close()


@on_single_and_cluster
async def test_nobody_in_reach_is_said_at_once(http, admin_headers) -> None:
    lat, lng = remote_spot()
    r = http.post(
        "/v1/incidents",
        json={"lat": lat, "lng": lng, "category": "choking"},
        headers=dispatcher(http, admin_headers),
    )
    assert r.status_code == 201
    body = r.json()
    assert body["alerts"] == [] and body["coverage"] == {
        "covered": False,
        "fastest_eta_s": None,
        "aed_eta_s": None,
        "positions": "live",
    }


@on_single_and_cluster
async def test_reconnecting_phones_get_pending_alerts_and_accepted_incidents(
    live_server, http, admin_headers
) -> None:
    lat, lng = remote_spot()
    person = on_duty_at(http, admin_headers, *offset(lat, lng, 50, 0))
    incident = http.post(
        "/v1/incidents",
        json={"lat": lat, "lng": lng, "category": "unconscious", "address": "Pier 9"},
        headers=dispatcher(http, admin_headers),
    ).json()
    (alert,) = incident["alerts"]
    async with Phone(live_server.ws_url, person["token"]) as phone:  # connects after the incident
        assert (await phone.next(type_="alert"))["alert_id"] == alert["alert_id"]
    async with Phone(live_server.ws_url, person["token"], crs="gcj02") as phone:  # again, unanswered
        frame = await phone.next(type_="alert")
        assert frame["alert_id"] == alert["alert_id"]
        await phone.send({"type": "ack", "alert_id": alert["alert_id"], "response": "accept"})
        assert (await phone.next(type_="incident"))["address"] == "Pier 9"
    async with Phone(live_server.ws_url, person["token"]) as phone:  # after accepting: the exact place
        again = await phone.next()
        assert again["type"] == "incident" and again["lat"] == pytest.approx(lat)


async def test_an_alert_survives_a_restart(app_env, admin_headers) -> None:
    first = ServerProcess(env=app_env).start()
    try:
        http = httpx.Client(base_url=first.url, timeout=30)
        lat, lng = remote_spot()
        person = on_duty_at(http, admin_headers, *offset(lat, lng, 0, 60))
        incident = http.post(
            "/v1/incidents",
            json={"lat": lat, "lng": lng, "category": "cardiac_arrest"},
            headers=dispatcher(http, admin_headers),
        ).json()
    finally:
        first.stop()
    second = ServerProcess(env=app_env).start()
    try:
        async with Phone(second.ws_url, person["token"]) as phone:
            assert (await phone.next(type_="alert"))["alert_id"] == incident["alerts"][0]["alert_id"]
    finally:
        second.stop()


@pytest.fixture
def two_servers(
    app_env: dict[str, str], store_env: dict[str, str]
) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """Two servers on one database and one Redis, escalating a step a second (on the cluster,
    test_workers.py plays this with four workers). Not the session's settings: stores of their own."""
    with stores_of_its_own(store_env["DATABASE_URL"], "twoworkers") as own:
        env = {**app_env, **own, "DISPATCH_ESCALATION_INTERVAL_S": "1", "DISPATCH_ESCALATION_STEP_S": "60"}
        with ServerProcess(env=env).start() as a, ServerProcess(env=env).start() as b:
            yield a, b


async def test_two_workers_share_alerts_and_escalate_once(two_servers, admin_headers) -> None:
    a, b = two_servers
    with (
        httpx.Client(base_url=a.url, timeout=30) as http_a,
        httpx.Client(base_url=b.url, timeout=30) as http_b,
    ):
        lat, lng = remote_spot()
        near = on_duty_at(http_a, admin_headers, *offset(lat, lng, 100, 0))
        # 1.5 km on an e-bike: 385 s, beyond 300 s but within the second step (420 s)
        far = on_duty_at(http_a, admin_headers, *offset(lat, lng, -1500, 0), mode="ebike")
        async with Phone(a.ws_url, near["token"]) as near_phone, Phone(a.ws_url, far["token"]) as far_phone:
            incident = http_b.post(
                "/v1/incidents",
                json={"lat": lat, "lng": lng, "category": "cardiac_arrest"},
                headers=dispatcher(http_b, admin_headers),
            ).json()
            assert [x["responder_id"] for x in incident["alerts"]] == [near["id"]]
            assert (await near_phone.next(type_="alert"))["incident_id"] == incident[
                "id"
            ]  # created on b, held by a
            # Only these two servers' clocks step the incident (the session's once did too, and
            # put the next step 30 s away). Bounds stay generous for a loaded 2-core machine; a
            # step that never comes still fails, with the incident's timeline.
            late = await far_phone.next(timeout=40, type_="alert")
            assert late["incident_id"] == incident["id"]
            detail = {}
            deadline = time.monotonic() + 40
            while time.monotonic() < deadline:
                detail = http_a.get(
                    f"/v1/incidents/{incident['id']}", headers=dispatcher(http_a, admin_headers)
                ).json()
                if any(e["kind"] == "escalation_exhausted" for e in detail["events"]):
                    break
                await asyncio.sleep(0.2)
            steps = [e["data"]["step"] for e in detail["events"] if e["kind"] == "escalated"]
            timeline = [(e["ts"], e["kind"], e["data"]) for e in detail["events"]]
            # 360 s, 420 s, 480 s: each step exactly once across two workers
            assert steps == [1, 2, 3], timeline
            assert [e["data"]["reach_s"] for e in detail["events"] if e["kind"] == "escalated"] == [
                360,
                420,
                480,
            ]
            assert sum(e["kind"] == "escalation_exhausted" for e in detail["events"]) == 1
            batches = {x["responder_id"]: x for x in detail["alerts"]}
            assert batches[far["id"]]["role"] == "undecided"  # decided only if they accept


async def test_any_worker_steps_an_incident_on_the_schedule_it_opened_with(
    store_env: dict[str, str], redis_url_each: str
) -> None:
    """Every worker's dispatch clock may take an incident's next step; whatever its own settings
    (a rolling restart after a configuration change), the step after is due on the incident's
    interval. Incidents opened before the interval was kept follow the worker's setting."""
    settings = Settings(
        database_url=store_env["DATABASE_URL"], redis_url=redis_url_each, escalation_interval_s=30
    )
    redis_client = connect_redis(redis_url_each)
    db = Database(settings.database_url, pool_size=1)
    keys = Keys("rctest-escalation-" + secrets.token_hex(4))
    store = LiveLocationStore(redis_client, keys, settings)
    ctx = DispatchContext.build(settings, db, store, Fanout(redis_client, keys))
    await store.mark_rebuilt(await store.begin_rebuild())  # as a worker's upkeep does at start
    lat, lng = remote_spot()
    try:
        async with db.sessions() as session:
            for opened_with, expected in ((2.0, 2.0), (None, 30.0)):
                now = datetime.now(UTC)
                incident = Incident(
                    category="cardiac_arrest",
                    location=f"SRID=4326;POINT({lng} {lat})",
                    lat=lat,
                    lng=lng,
                    reach_s=300.0,
                    coverage={},
                    escalation_step=0,
                    escalation_interval_s=opened_with,
                    next_escalation_at=now,
                    created_by="test",
                )
                session.add(incident)
                await session.flush()
                await escalate(session, ctx, incident)
                assert incident.escalation_step == 1 and incident.next_escalation_at is not None
                gap = (incident.next_escalation_at - now).total_seconds()
                assert expected <= gap < expected + 5, (opened_with, gap)
            await session.rollback()
    finally:
        await store.aclose()
        await db.dispose()
        await redis_client.aclose()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"lat": 91, "lng": 0, "category": "choking"}, "lat"),
        ({"lat": 0, "lng": 0, "category": "hiccups"}, "category"),
        ({"lat": 0, "lng": float("inf"), "category": "choking"}, "lng"),
    ],
)
def test_bad_incidents_name_the_field(http, admin_headers, body, field) -> None:
    desk = dispatcher(http, admin_headers)
    r = http.post(
        "/v1/incidents",
        content=httpx.Request("POST", "/", json=body).content
        if field != "lng"
        else '{"lat": 0, "lng": Infinity, "category": "choking"}',
        headers={**desk, "content-type": "application/json"},
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == field


def test_reach_out_of_bounds_and_roles(http, admin_headers, token_for) -> None:
    desk = dispatcher(http, admin_headers)
    r = http.post(
        "/v1/incidents", json={"lat": 0, "lng": 0, "category": "choking", "reach_s": 5000}, headers=desk
    )
    assert r.status_code == 422 and r.json()["detail"].startswith("reach_s:")
    person = register(http, admin_headers)
    r = http.post(
        "/v1/incidents", json={"lat": 0, "lng": 0, "category": "choking"}, headers=bearer(person["token"])
    )
    assert r.status_code == 403
    assert http.get("/v1/incidents/00000000-0000-0000-0000-000000000000", headers=desk).status_code == 404


async def test_sockets_refuse_bad_tokens_and_roles(live_server, http, admin_headers, token_for) -> None:
    import websockets

    for path, token, code in [
        ("/v1/ws/responder", "bogus", 4401),
        ("/v1/ws/responder", token_for("dispatcher")["Authorization"].split()[1], 4403),
        ("/v1/ws/dispatch", register(http, admin_headers)["token"], 4403),
    ]:
        async with websockets.connect(f"{live_server.ws_url}{path}?token={token}") as ws:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd.code == code


@on_single_and_cluster
async def test_location_frames_over_the_socket(live_server, http, admin_headers) -> None:
    person = register(http, admin_headers)
    http.put(f"/v1/responders/{person['id']}/duty", json={"on_duty": True}, headers=admin_headers)
    lat, lng = remote_spot()
    async with Phone(live_server.ws_url, person["token"]) as phone:
        await phone.send({"type": "location", "lat": 95, "lng": lng, "ts": iso()})
        err = await phone.next(type_="error")
        assert err["field"] == "lat"
        await phone.send({"type": "location", "lat": lat, "lng": lng, "ts": iso(600)})
        assert (await phone.next(type_="error"))["field"] == "ts"
        await phone.send({"type": "location", "lat": lat, "lng": lng, "ts": iso(), "mode": "bicycle"})
        for _ in range(50):
            seen = http.get(f"/v1/responders/{person['id']}", headers=admin_headers).json()
            if seen["position"]:
                break
            await asyncio.sleep(0.05)
        assert (
            seen["position"]["lat"] == pytest.approx(lat, abs=1e-6) and seen["position"]["mode"] == "bicycle"
        )


HOSTILE_FRAMES: list[tuple[str | bytes, int]] = [
    (b"\x00\x01 not text", 400),  # binary: was KeyError 'text', the socket dropped without a close frame
    ("[" * 100_000 + "]" * 100_000, 413),  # JSON 100,000 deep: was RecursionError; now over the size cap
    ('{"type": "location", "lat": ' + "[" * 5_000 + "]" * 5_000 + "}", 400),  # deep within the cap
    ("9" * 5_000, 400),  # an integer of 5,000 digits: Python refuses to parse it
    ("x" * 70_000, 413),  # over the 64 KiB default cap
]


async def test_hostile_frames_get_an_error_frame_and_both_sockets_stay_open(
    live_server, http, admin_headers
) -> None:
    person = register(http, admin_headers)
    async with Phone(live_server.ws_url, person["token"]) as phone:
        for frame, code in HOSTILE_FRAMES:
            await phone.ws.send(frame)
            assert (await phone.next(type_="error"))["code"] == code
        await phone.send({"type": "wave"})  # still open and answering
        assert (await phone.next(type_="error"))["message"].startswith("type: must be one of")
    desk = dispatcher(http, admin_headers)
    async with Console(live_server.ws_url, desk["Authorization"].split()[1]) as console:
        for frame, code in HOSTILE_FRAMES[:2]:
            await console.ws.send(frame)
            error = json.loads(await asyncio.wait_for(console.ws.recv(), 5))
            assert error["type"] == "error" and error["code"] == code
        lat, lng = remote_spot()
        body = {"lat": lat, "lng": lng, "category": "choking"}
        incident = http.post("/v1/incidents", json=body, headers=desk).json()
        await console.wait_for(incident["id"], "opened")  # still open and receiving
