"""The ladder against real PostgreSQL, Redis and the app: socket, then push, SMS, voice until a receipt.

The app runs on a database of its own with its ladder off (`DISPATCH_LADDER_ENABLED=0`); the
ladder is stepped here, in this process, against that same database and Redis namespace, with
recording channels standing in for the outside world (a push service, an SMS gateway, a phone
network): our code runs for real, only the providers are doubles. Phones and consoles use the
real websockets; receipts go over real HTTP.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import pytest_asyncio

from core.config import Settings
from core.db import Database
from core.redis import Keys, connect_redis
from dispatch.channels.base import Attempt, AttemptResult, Outcome
from dispatch.channels.presence import Presence
from dispatch.channels.service import Ladder
from dispatch.context import DispatchContext
from dispatch.fanout import Fanout
from responders.store import LiveLocationStore
from tests.support.db import fetch, fresh_database
from tests.support.people import bearer, on_duty_at
from tests.support.phones import Phone
from tests.support.server import ServerProcess

pytestmark = pytest.mark.integration
PHONE_NUMBER = "+86 138 0000 0000"


class Recorder:
    """A provider double: records each attempt and answers `outcome` (or raises `error`)."""

    def __init__(self, name: str, outcome: Outcome = Outcome.sent, error: Exception | None = None) -> None:
        self.name, self.outcome, self.error = name, outcome, error
        self.attempts: list[Attempt] = []

    async def send(self, attempt: Attempt) -> AttemptResult:
        self.attempts.append(attempt)
        if self.error is not None:
            raise self.error
        return AttemptResult(
            self.outcome, f"{self.name} provider said ok", f"{self.name}-{len(self.attempts)}"
        )


@pytest.fixture(scope="module")
def own_db(store_env: dict[str, str]) -> Iterator[str]:
    """A fresh, migrated database: no other test's server steps its alerts."""
    with fresh_database(store_env["DATABASE_URL"], "ladder") as url:
        yield url


@pytest.fixture(scope="module")
def server(own_db: str, app_env: dict[str, str]) -> Iterator[ServerProcess]:
    prefix = "rcladder" + secrets.token_hex(3)
    env = {**app_env, "DATABASE_URL": own_db, "DISPATCH_REDIS_PREFIX": prefix, "DISPATCH_LADDER_ENABLED": "0"}
    proc = ServerProcess(env=env).start()
    yield proc
    proc.stop()


@pytest.fixture
def http(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30.0) as client:
        yield client


@pytest_asyncio.fixture
async def make_ladder(server: ServerProcess) -> AsyncIterator[Callable[..., Ladder]]:
    """Ladders stepping the server's alerts in this process, each with its own pool (a worker)."""
    env = server.env
    redis = connect_redis(env["REDIS_URL"])
    keys = Keys(env["DISPATCH_REDIS_PREFIX"])
    made: list[tuple[Database, LiveLocationStore]] = []

    def build(channels: dict[str, Recorder], **timings: float) -> Ladder:
        settings = Settings(database_url=env["DATABASE_URL"], redis_prefix=keys.prefix, **timings)
        db = Database(settings.database_url, pool_size=2)
        store = LiveLocationStore(redis, keys, settings)
        made.append((db, store))
        return Ladder(DispatchContext.build(settings, db, store, Fanout(redis, keys), channels))

    yield build
    for db, store in made:
        await store.aclose()
        await db.dispose()
    await redis.aclose()


def remote_spot() -> tuple[float, float]:
    return random.uniform(-45, 45), random.uniform(-170, 170)


def desk(http: httpx.Client, admin: dict[str, str]) -> dict[str, str]:
    r = http.post("/v1/tokens", json={"role": "dispatcher", "label": "ladder desk"}, headers=admin)
    return bearer(r.json()["token"])


def open_incident(http: httpx.Client, dispatcher: dict[str, str], lat: float, lng: float) -> dict:
    r = http.post(
        "/v1/incidents", json={"lat": lat, "lng": lng, "category": "cardiac_arrest"}, headers=dispatcher
    )
    assert r.status_code == 201, r.text
    return r.json()


async def step_until(ladders: list[Ladder], done: Callable[[], bool], timeout: float = 30.0) -> None:
    """Step the ladders (as the dispatch clock would) until `done()` holds."""
    async with asyncio.timeout(timeout):
        while True:
            for ladder in ladders:
                await ladder.step_due()
                await ladder.drain()
            if done():
                return
            await asyncio.sleep(0.1)


def events_of(http: httpx.Client, dispatcher: dict[str, str], incident_id: str) -> list[dict]:
    return http.get(f"/v1/incidents/{incident_id}", headers=dispatcher).json()["events"]


def seconds_after(later: dict, earlier: dict) -> float:
    return (datetime.fromisoformat(later["ts"]) - datetime.fromisoformat(earlier["ts"])).total_seconds()


async def alert_row(url: str, alert_id: str) -> dict:
    rows = await fetch(
        url,
        "SELECT status, delivered_via, ladder_due_at FROM alerts WHERE id = $1",
        uuid.UUID(alert_id),
    )
    return dict(rows[0])


async def test_a_half_open_socket_climbs_to_push_then_sms_and_the_sms_receipt_stops_it(
    server: ServerProcess, http: httpx.Client, admin_headers: dict[str, str], make_ladder, own_db: str
) -> None:
    push, sms, voice = Recorder("push"), Recorder("sms"), Recorder("voice")
    ladder = make_ladder(
        {"push": push, "sms": sms, "voice": voice}, receipt_timeout_s=2, sms_after_s=4, voice_after_s=6
    )
    dispatcher = desk(http, admin_headers)
    lat, lng = remote_spot()
    person = on_duty_at(http, admin_headers, lat + 0.0005, lng, phone=PHONE_NUMBER)
    async with Phone(server.ws_url, person["token"], confirm=False) as phone:  # in a lift
        incident = open_incident(http, dispatcher, lat, lng)
        alert = await phone.next(type_="alert")
        alert_id = alert["alert_id"]
        await step_until([ladder], lambda: len(push.attempts) == 1)
        assert (await alert_row(own_db, alert_id))["status"] == "sent"
        await step_until([ladder], lambda: len(sms.attempts) == 1)
        assert voice.attempts == [] and len(push.attempts) == 1

        attempt = sms.attempts[0]
        assert attempt.alert.alert_id == alert_id and attempt.phone == PHONE_NUMBER and attempt.step == 2
        link = urlsplit(attempt.link or "")
        assert (link.scheme, link.netloc, link.path) == ("http", "127.0.0.1:8000", "/responder")
        query = parse_qs(link.query)
        assert query["alert"] == [alert_id]
        by_code = {"X-Alert-Code": query["code"][0]}
        opened = http.get(f"/v1/alerts/{alert_id}", headers=by_code)
        assert opened.status_code == 200 and opened.json()["incident"] is None
        r = http.post(f"/v1/alerts/{alert_id}/received", headers=by_code)  # the SMS link, opened
        assert r.json() == {"alert_id": alert_id, "status": "delivered", "delivered_via": "sms"}

        stopped = await alert_row(own_db, alert_id)
        assert stopped["delivered_via"] == "sms" and stopped["ladder_due_at"] is None
        await asyncio.sleep(6.5 - 4)  # past the voice rung's time: nothing may come now
        await step_until([ladder], lambda: True)
        assert voice.attempts == []

    log = events_of(http, dispatcher, incident["id"])
    sent = next(e for e in log if e["kind"] == "alert_sent")
    attempts = [e for e in log if e["kind"] == "attempt"]
    assert [(e["data"]["channel"], e["data"]["step"], e["data"]["outcome"]) for e in attempts] == [
        ("socket", 0, "sent"),
        ("push", 1, "sent"),
        ("sms", 2, "sent"),
    ]
    assert attempts[1]["data"]["provider_id"] == "push-1" and attempts[1]["data"]["detail"]
    # a socket took the alert, so push waited for the receipt timeout; SMS came at its time
    assert seconds_after(attempts[1], sent) >= 2.0
    assert seconds_after(attempts[2], sent) >= 4.0
    delivered = [e for e in log if e["kind"] == "delivered"]
    assert len(delivered) == 1 and delivered[0]["data"]["delivered_via"] == "sms"
    assert "attempt_skipped" not in [e["kind"] for e in log]
    detail = http.get(f"/v1/incidents/{incident['id']}", headers=dispatcher).json()
    reached = detail["alerts"][0]
    assert reached["delivered_via"] == "sms"
    assert [(a["channel"], a["outcome"]) for a in reached["attempts"]] == [
        ("socket", "sent"),
        ("push", "sent"),
        ("sms", "sent"),
    ]


async def test_without_a_socket_push_goes_at_once_and_a_received_frame_stops_the_ladder(
    server: ServerProcess, http: httpx.Client, admin_headers: dict[str, str], make_ladder, own_db: str
) -> None:
    push, sms = Recorder("push"), Recorder("sms")
    ladder = make_ladder({"push": push, "sms": sms})  # the defaults: push 5 s after a socket, SMS 20 s
    dispatcher = desk(http, admin_headers)
    lat, lng = remote_spot()
    person = on_duty_at(http, admin_headers, lat + 0.0005, lng, phone=PHONE_NUMBER)
    incident = open_incident(http, dispatcher, lat, lng)
    alert_id = incident["alerts"][0]["alert_id"]
    await ladder.step_due()  # one round, right after the publish
    await ladder.drain()
    assert [a.alert.alert_id for a in push.attempts] == [alert_id] and sms.attempts == []
    assert push.attempts[0].link is None and push.attempts[0].step == 1
    await ladder.step_due()  # a second round finds nothing due: push is not sent twice
    await ladder.drain()
    assert len(push.attempts) == 1

    # the push woke the phone: the app connects, shows the alert and confirms on its socket
    async with Phone(server.ws_url, person["token"]) as phone:
        assert (await phone.next(type_="alert"))["alert_id"] == alert_id
        async with asyncio.timeout(10):
            while True:
                row = await alert_row(own_db, alert_id)
                if row["status"] == "delivered":
                    break
                await asyncio.sleep(0.05)
    assert row["delivered_via"] == "socket" and row["ladder_due_at"] is None
    await ladder.step_due()
    assert sms.attempts == []


async def test_skips_errors_and_the_end_of_an_alert_are_logged_and_never_sent_twice_by_two_workers(
    server: ServerProcess, http: httpx.Client, admin_headers: dict[str, str], make_ladder, own_db: str
) -> None:
    channels = {
        "push": Recorder("push", error=ConnectionError("push service unreachable")),
        "sms": Recorder("sms"),
    }
    timings = {"receipt_timeout_s": 0.5, "sms_after_s": 1.0, "voice_after_s": 1.5}
    workers = [make_ladder(channels, **timings), make_ladder(channels, **timings)]
    dispatcher = desk(http, admin_headers)
    lat, lng = remote_spot()
    crowd = [
        on_duty_at(
            http, admin_headers, lat + 0.0003 * (i + 1), lng, **({"phone": PHONE_NUMBER} if i % 2 else {})
        )
        for i in range(6)
    ]
    incident = open_incident(http, dispatcher, lat, lng)
    alert_ids = {a["alert_id"] for a in incident["alerts"]}
    assert len(alert_ids) == len(crowd)

    async def climbed() -> None:
        async with asyncio.timeout(30):
            while True:
                rows = await fetch(
                    own_db,
                    "SELECT count(*) AS n FROM alerts WHERE incident_id = $1 AND ladder_due_at IS NOT NULL",
                    uuid.UUID(incident["id"]),
                )
                if rows[0]["n"] == 0:
                    return
                await asyncio.gather(*(step_until([w], lambda: True) for w in workers))

    await climbed()
    log = events_of(http, dispatcher, incident["id"])
    tried = [(e["data"]["alert_id"], e["data"]["channel"]) for e in log if e["kind"] == "attempt"]
    skipped = [
        (e["data"]["alert_id"], e["data"]["channel"], e["data"]["detail"])
        for e in log
        if e["kind"] == "attempt_skipped"
    ]
    # each rung once per alert, whichever worker took it
    assert sorted(tried) == sorted({*tried}) and len(channels["push"].attempts) == 6
    assert {a for a, c in tried if c == "push"} == alert_ids
    errors = [e["data"] for e in log if e["kind"] == "attempt" and e["data"]["channel"] == "push"]
    assert {(d["outcome"], d["detail"]) for d in errors} == {
        ("provider_error", "ConnectionError: push service unreachable")
    }
    with_phone = {
        a["alert_id"] for a in incident["alerts"] if a["responder_id"] in {p["id"] for p in crowd[1::2]}
    }
    assert {a for a, c in tried if c == "sms"} == with_phone
    assert len(channels["sms"].attempts) == 3
    assert sorted(skipped) == sorted(
        [(a, "sms", "the responder has no phone number") for a in alert_ids - with_phone]
        + [(a, "voice", "voice is not configured on this service") for a in alert_ids]
    )

    # an alert that ended is never laddered: closed before its first rung, nothing is sent
    quiet = [Recorder("push"), Recorder("sms")]
    late = make_ladder({"push": quiet[0], "sms": quiet[1]}, **timings)
    lat2, lng2 = remote_spot()
    on_duty_at(http, admin_headers, lat2 + 0.0005, lng2, phone=PHONE_NUMBER)
    second = open_incident(http, dispatcher, lat2, lng2)
    assert http.post(f"/v1/incidents/{second['id']}/close", headers=dispatcher).status_code == 200
    await step_until([late], lambda: True)
    assert quiet[0].attempts == [] and quiet[1].attempts == []
    kinds = [e["kind"] for e in events_of(http, dispatcher, second["id"])]
    assert "attempt" not in kinds and "attempt_skipped" not in kinds


async def test_socket_presence_is_counted_across_workers_in_redis(redis_url_each: str) -> None:
    """Two sockets of one responder (say on two workers): attached until both closed. Asked about
    many responders at once (their counts in many slots on a cluster), each is answered."""
    redis = connect_redis(redis_url_each)
    try:
        keys = Keys("rcpresence" + secrets.token_hex(3))
        one, two = Presence(redis, keys), Presence(redis, keys)  # two workers
        rid, other = str(uuid.uuid4()), str(uuid.uuid4())
        crowd = [str(uuid.uuid4()) for _ in range(60)]
        assert await one.attached([rid, other, *crowd]) == set()
        await one.attach(rid)
        await two.attach(rid)
        for held in crowd[::2]:
            await two.attach(held)
        await one.detach(rid)
        assert await two.attached([rid, other, *crowd]) == {rid, *crowd[::2]}
        await two.detach(rid)
        assert await one.attached([rid, other, *crowd]) == set(crowd[::2])
        assert 0 < await redis.ttl(keys("sockets", rid)) <= 3600  # a dead worker's count runs out
    finally:
        await redis.aclose()
    down = connect_redis("redis://127.0.0.1:1/0")
    try:
        unreachable = Presence(down, Keys("x"))
        await unreachable.attach(rid)  # a socket works without Redis
        assert await unreachable.attached([rid]) == set()  # unknown reads as "no socket": push at once
    finally:
        await down.aclose()
