"""Faults: Redis and PostgreSQL stopped and restarted under a running service, while incidents are
open and phones hold sockets. No committed alert or event is lost and dispatch resumes without
restarting the app. The stores here are private (tests/support/stores.py): the shared ones serve
the rest of the suite. Recovery times are written to test-artifacts/fault-recovery.json.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import AsyncIterator, Awaitable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import pytest_asyncio
import redis
import websockets

from tests.support.inbox import WAIT_S, Inbox, alert_for, event, until_alerting
from tests.support.people import bearer, iso, on_duty_at
from tests.support.phones import Console, Phone
from tests.support.server import ROOT, ServerProcess
from tests.support.stores import PrivateStores

pytestmark = pytest.mark.integration
FIGURES: dict[str, float] = {}


def offset(lat: float, lng: float, north_m: float) -> tuple[float, float]:
    return lat + north_m / 111_195.0, lng


def remote_spot() -> tuple[float, float]:
    """A place of this test's own: the private database keeps earlier runs' responders."""
    return random.uniform(-45, 45), random.uniform(-170, 170)


@pytest.fixture(scope="module")
def stores() -> Iterator[PrivateStores]:
    private = PrivateStores().start()
    yield private
    private.stop("pg redis")
    if FIGURES:
        out = ROOT / "test-artifacts" / "fault-recovery.json"
        out.parent.mkdir(exist_ok=True)
        out.write_text(json.dumps(FIGURES, indent=2))


@pytest.fixture(scope="module")
def server(stores: PrivateStores, app_env: dict[str, str]) -> Iterator[ServerProcess]:
    env = {
        **app_env,
        "DATABASE_URL": stores.database_url,
        "REDIS_URL": stores.redis_url,
        "DISPATCH_LIVE_WARMUP_S": "60",
        "DISPATCH_REPLAN_S": "1",
        "DISPATCH_ESCALATION_INTERVAL_S": "60",  # twice WAIT_S: a prompt re-plan is told apart
    }
    process = ServerProcess(env=env).start()
    yield process
    process.stop()


@pytest.fixture(autouse=True)
def both_stores_up_after(stores: PrivateStores) -> Iterator[None]:
    """A test that fails mid-outage must not leave the next one without a store."""
    yield
    stores.restart()


@pytest_asyncio.fixture
async def http(server: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        yield client


async def stream(phone: Phone, lat: float, lng: float) -> None:
    """A phone on duty: a fix every second, whatever the answers."""
    while True:
        with contextlib.suppress(Exception):
            await phone.send({"type": "location", "lat": lat, "lng": lng, "ts": iso(), "accuracy_m": 5})
        await asyncio.sleep(1.0)


def desk(http: httpx.Client, admin: dict[str, str]) -> dict[str, str]:
    r = http.post("/v1/tokens", json={"role": "dispatcher", "label": "fault desk"}, headers=admin)
    return bearer(r.json()["token"])


async def open_incident(http: httpx.AsyncClient, headers: dict[str, str], lat: float, lng: float) -> dict:
    r = await http.post(
        "/v1/incidents", json={"lat": lat, "lng": lng, "category": "cardiac_arrest"}, headers=headers
    )
    assert r.status_code == 201, r.text
    return r.json()


def drop_subscriptions(stores: PrivateStores) -> None:
    """Cut every pub/sub connection (redis-py reconnects and subscribes again by itself)."""
    with redis.Redis.from_url(stores.redis_url) as r:
        assert r.client_kill_filter(_type="pubsub") >= 1


async def timeline_if_late(
    http: httpx.AsyncClient, headers: dict[str, str], incident_id: str, waiting: Awaitable[Any]
) -> Any:
    """Await `waiting`; if it times out, fail with the incident's event log (what did happen)."""
    try:
        return await waiting
    except TimeoutError:
        detail = (await http.get(f"/v1/incidents/{incident_id}", headers=headers)).json()
        raise AssertionError(f"late; the incident's events: {detail['events']}") from None


@dataclass
class Scene:
    """Two on-duty phones either side of a spot, streaming fixes, and a dispatcher's console."""

    lat: float
    lng: float
    dispatcher: dict[str, str]
    people: tuple[dict, dict]
    phones: tuple[Phone, Phone]
    inboxes: tuple[Inbox, Inbox]
    board: Inbox


@contextlib.asynccontextmanager
async def scene(server: ServerProcess, admin_headers: dict[str, str], metres: float) -> AsyncIterator[Scene]:
    sync = httpx.Client(base_url=server.url, timeout=30)
    dispatcher = desk(sync, admin_headers)
    lat, lng = remote_spot()
    spots = offset(lat, lng, metres), offset(lat, lng, -metres)
    people = (on_duty_at(sync, admin_headers, *spots[0]), on_duty_at(sync, admin_headers, *spots[1]))
    async with (
        Phone(server.ws_url, people[0]["token"]) as one,
        Phone(server.ws_url, people[1]["token"]) as two,
        Console(server.ws_url, dispatcher["Authorization"].split()[1]) as console,
    ):
        streams = [asyncio.create_task(stream(p, *spot)) for p, spot in zip((one, two), spots, strict=True)]
        try:
            yield Scene(
                lat, lng, dispatcher, people, (one, two), (Inbox(one.ws), Inbox(two.ws)), Inbox(console.ws)
            )
        finally:
            for task in streams:
                task.cancel()


async def test_a_duty_change_after_a_redis_restart_does_not_hide_the_loss(
    server: ServerProcess, stores: PrivateStores, http: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    """Item 2: Redis restarts, one responder's duty PUT recreates the profile hash before the
    upkeep looks; every other on-duty responder's fixes must still be accepted again."""
    sync = httpx.Client(base_url=server.url, timeout=30)
    lat, lng = remote_spot()
    clocking_on = on_duty_at(sync, admin_headers, *offset(lat, lng, 60))
    other = on_duty_at(sync, admin_headers, *offset(lat, lng, -60))
    stores.stop("redis")
    stores.restart()
    r = await http.put(
        f"/v1/responders/{clocking_on['id']}/duty", json={"on_duty": True}, headers=admin_headers
    )
    assert r.status_code == 200, r.text
    fix = {"lat": offset(lat, lng, -60)[0], "lng": lng, "accuracy_m": 5}

    async def stored() -> bool:
        body = {**fix, "ts": iso()}
        r = await http.post("/v1/locations", json=body, headers=bearer(other["token"]))
        return r.status_code == 200 and r.json()["stored"] == 1

    async with asyncio.timeout(WAIT_S):  # refused as "not on duty" until the profiles are rebuilt
        while True:
            if await stored():
                break
            await asyncio.sleep(0.5)
    incident = await open_incident(http, desk(sync, admin_headers), lat, lng)
    assert other["id"] in {a["responder_id"] for a in incident["alerts"]}


async def test_a_redis_restart_loses_no_alert_and_dispatch_resumes(
    server: ServerProcess, stores: PrivateStores, http: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    async with scene(server, admin_headers, 80) as s:
        (a, b), (phone_a, _), (inbox_a, inbox_b), board = s.people, s.phones, s.inboxes, s.board
        dispatcher, lat, lng = s.dispatcher, s.lat, s.lng
        first = await open_incident(http, dispatcher, lat, lng)
        assert {x["responder_id"] for x in first["alerts"]} == {a["id"], b["id"]}
        alert_a = await inbox_a.wait(alert_for(first["id"]))
        await inbox_b.wait(alert_for(first["id"]))

        stores.stop("redis")
        # an accept while Redis is down is committed, and the phone gets the exact place; without
        # positions to choose a role on, the acceptor goes straight to the patient
        await phone_a.send({"type": "ack", "alert_id": alert_a["alert_id"], "response": "accept"})
        mission = await inbox_a.wait(
            lambda f: f["type"] == "incident" and f["alert_id"] == alert_a["alert_id"]
        )
        assert mission["role"] == "cpr" and mission["aed"] is None
        # a fix while Redis is down: an error frame naming the store, the socket stays open
        refused = await inbox_b.wait(lambda f: f["type"] == "error" and f["code"] == 503)
        assert "Redis" in refused["store"]
        # an incident while Redis is down is recorded, saying positions are unavailable
        blind = await open_incident(http, dispatcher, lat, lng)
        assert blind["alerts"] == [] and blind["coverage"]["positions"] == "unavailable"

        back = stores.restart()
        # the incident opened blind is dispatched as soon as the positions stream back
        await timeline_if_late(http, dispatcher, blind["id"], inbox_b.wait(alert_for(blind["id"])))
        FIGURES["redis_back_to_blind_incident_alerted_s"] = round(time.monotonic() - back, 2)
        # dispatchers get the accept that was committed while Redis was down
        await board.wait(event(first["id"], "accepted"))
        fresh = await until_alerting(http, dispatcher, lat, lng)
        FIGURES["redis_back_to_new_incident_alerting_s"] = round(time.monotonic() - back, 2)
        await inbox_b.wait(alert_for(fresh["id"]))
        assert inbox_a.open and inbox_b.open and board.open
    detail = (await http.get(f"/v1/incidents/{first['id']}", headers=dispatcher)).json()
    status = {x["alert_id"]: x["status"] for x in detail["alerts"]}
    assert status[alert_a["alert_id"]] == "accepted"
    accepted = [e for e in detail["events"] if e["kind"] == "accepted"]
    assert [e["data"]["alert_id"] for e in accepted] == [alert_a["alert_id"]]
    [decided] = [e["data"] for e in detail["events"] if e["kind"] == "role_assigned"]
    assert decided["role"] == "cpr" and decided["fallback"].startswith("positions unavailable")


async def test_a_postgres_restart_loses_no_alert_and_dispatch_resumes(
    server: ServerProcess, stores: PrivateStores, http: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    async with scene(server, admin_headers, 70) as s:
        (_, d), (phone_c, _), (inbox_c, inbox_d), board = s.people, s.phones, s.inboxes, s.board
        dispatcher, lat, lng = s.dispatcher, s.lat, s.lng
        first = await open_incident(http, dispatcher, lat, lng)
        alert_c = await inbox_c.wait(alert_for(first["id"]))
        alert_d = await inbox_d.wait(alert_for(first["id"]))
        await phone_c.send({"type": "received", "alert_id": alert_c["alert_id"]})  # on screen
        await board.wait(event(first["id"], "delivered"))

        stores.stop("pg")
        # an accept while PostgreSQL is down: an error frame naming it, the socket stays open
        await phone_c.send({"type": "ack", "alert_id": alert_c["alert_id"], "response": "accept"})
        refused = await inbox_c.wait(lambda f: f["type"] == "error" and f["code"] == 503)
        assert "PostgreSQL" in refused["store"] and refused["alert_id"] == alert_c["alert_id"]
        # a new incident cannot be recorded: a 503 naming the store, never a 500
        r = await http.post(
            "/v1/incidents", json={"lat": lat, "lng": lng, "category": "choking"}, headers=dispatcher
        )
        assert r.status_code == 503 and "PostgreSQL" in r.json()["detail"], r.text
        assert r.headers["Retry-After"]
        # a phone connecting now is told to come back (1013), not refused with a 500
        async with Phone(server.ws_url, d["token"]) as late:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await late.ws.recv()
        assert closed.value.rcvd.code == 1013 and "PostgreSQL" in closed.value.rcvd.reason

        back = stores.restart()
        fresh = await until_alerting(http, dispatcher, lat, lng)
        FIGURES["postgres_back_to_new_incident_alerting_s"] = round(time.monotonic() - back, 2)
        await inbox_d.wait(alert_for(fresh["id"]))
        # the accept, sent again, goes through; dispatchers see it
        await phone_c.send({"type": "ack", "alert_id": alert_c["alert_id"], "response": "accept"})
        await inbox_c.wait(lambda f: f["type"] == "incident" and f["alert_id"] == alert_c["alert_id"])
        await board.wait(event(first["id"], "accepted"))
        assert inbox_c.open and inbox_d.open and board.open
    # the pending alert committed before the outage is still there for a reconnecting phone
    async with Phone(server.ws_url, d["token"]) as again:
        await Inbox(again.ws).wait(lambda f: f["type"] == "alert" and f["alert_id"] == alert_d["alert_id"])
    detail = (await http.get(f"/v1/incidents/{first['id']}", headers=dispatcher)).json()
    kinds = [e["kind"] for e in detail["events"]]
    assert kinds.count("alert_sent") == 2 and kinds.count("accepted") == 1 and kinds[0] == "opened"


async def test_sockets_catch_up_from_the_record_when_the_relay_subscribes_again(
    server: ServerProcess, stores: PrivateStores, app_env: dict[str, str], admin_headers: dict[str, str]
) -> None:
    """Frames published while a worker's subscription was down never reach it: when the relay is
    subscribed again, its phones get their pending alerts from Postgres and its consoles the events
    logged since the last one they got. The alert here is made by a worker that publishes where
    this one does not listen (another Redis prefix), so only the catch-up can bring it."""
    sync = httpx.Client(base_url=server.url, timeout=30)
    dispatcher = desk(sync, admin_headers)
    lat, lng = remote_spot()
    person = on_duty_at(sync, admin_headers, *offset(lat, lng, 50))
    prefix = "elsewhere" + server.env["DISPATCH_REDIS_PREFIX"]
    elsewhere = ServerProcess(env={**server.env, "DISPATCH_REDIS_PREFIX": prefix}).start()
    try:
        other = httpx.Client(base_url=elsewhere.url, timeout=30)
        fix = {"lat": offset(lat, lng, 50)[0], "lng": lng, "ts": iso(), "accuracy_m": 5}
        assert other.post("/v1/locations", json=fix, headers=bearer(person["token"])).json()["stored"] == 1
        console_token = dispatcher["Authorization"].split()[1]
        async with (
            Phone(server.ws_url, person["token"]) as phone,
            Console(server.ws_url, console_token) as console,
        ):
            inbox, board = Inbox(phone.ws), Inbox(console.ws)
            unseen = other.post(
                "/v1/incidents", json={"lat": lat, "lng": lng, "category": "choking"}, headers=dispatcher
            ).json()
            assert [a["responder_id"] for a in unseen["alerts"]] == [person["id"]]
            await asyncio.sleep(1.0)
            assert not [f for f in inbox.frames if f["type"] == "alert"]  # published elsewhere
            drop_subscriptions(stores)
            await inbox.wait(alert_for(unseen["id"]))
            await board.wait(event(unseen["id"], "alert_sent"))
            # closed where this worker does not listen: the phone learns it at the next catch-up
            closed = other.post(f"/v1/incidents/{unseen['id']}/close", json={}, headers=dispatcher)
            assert closed.status_code == 200, closed.text
            drop_subscriptions(stores)
            await inbox.wait(lambda f: f["type"] == "cancel" and f["incident_id"] == unseen["id"])
            await board.wait(event(unseen["id"], "closed"))
            assert inbox.open and board.open
    finally:
        elsewhere.stop()
