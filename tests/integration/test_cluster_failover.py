"""A Redis Cluster primary dies under a running service: its replica takes over, and nothing the
dispatchers rely on is lost.

The cluster is private (tests/support/cluster.py: three primaries, a replica each), since a primary
is SIGKILLed: the one serving the slot of the responders' region (the live store tags every key
of a region `{<res-5 cell>}`), while two phones on duty there stream a fix every `FIX_S`, their
sockets are open, and an incident has alerted both. What must hold:

* no committed alert is lost: alerts live in PostgreSQL, so an accept sent during the outage is
  committed and answered, and a phone that reconnects gets its pending alert again;
* positions are back within one fix interval of the promotion: the first fixes sent after it are
  stored in the promoted replica and a nearby query finds them;
* dispatch resumes by itself: a new incident alerts the phones, without restarting anything.

The figures (promotion time, promotion to fresh positions, to a new incident alerting) are written
to test-artifacts/cluster-failover.json.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import AsyncIterator, Iterator

import h3
import httpx
import pytest
import pytest_asyncio
from redis.asyncio import RedisCluster

from core.config import Settings
from core.redis import Keys, connect_redis
from responders.store import LiveLocationStore
from tests.support.cluster import Failover, ReplicatedCluster
from tests.support.inbox import WAIT_S, Inbox, alert_for, event, until_alerting
from tests.support.people import bearer, iso, on_duty_at
from tests.support.phones import Console, Phone
from tests.support.server import ROOT, ServerProcess

pytestmark = pytest.mark.integration
FIX_S = 3.0  # the phones' fix interval here (10-15 s in the field; at 1 s a fix sent while the app still
# learnt the new slot map made the next one, two intervals after the promotion, the first found)
METRES = 80.0  # each phone this far north and south of the incident
FIGURES: dict[str, float] = {}


@pytest.fixture(scope="module")
def cluster() -> Iterator[ReplicatedCluster]:
    private = ReplicatedCluster(primaries=3, replicas=1).start()
    yield private
    private.stop()
    if FIGURES:
        out = ROOT / "test-artifacts" / "cluster-failover.json"
        out.parent.mkdir(exist_ok=True)
        out.write_text(json.dumps(FIGURES, indent=2))


@pytest.fixture(scope="module")
def server(cluster: ReplicatedCluster, app_env: dict[str, str]) -> Iterator[ServerProcess]:
    env = {
        **app_env,
        "REDIS_URL": cluster.url,  # a seed: the app learns the other nodes and the slots from it
        "DISPATCH_REPLAN_S": "1",
        "DISPATCH_ESCALATION_INTERVAL_S": "60",  # longer than the test: a re-plan is the failover's
    }
    process = ServerProcess(env=env).start()
    yield process
    process.stop()


@pytest_asyncio.fixture
async def store(cluster: ReplicatedCluster, server: ServerProcess) -> AsyncIterator[LiveLocationStore]:
    """The live store the app writes, read from the test through a cluster client of its own."""
    redis = connect_redis(cluster.url, cluster=True)
    assert isinstance(redis, RedisCluster)
    await redis.initialize()  # learn every node now, as the app did at start-up: the seed may die
    live = LiveLocationStore(redis, Keys(server.env["DISPATCH_REDIS_PREFIX"]), Settings())
    yield live
    await live.aclose()
    await redis.aclose()


def north(lat: float, lng: float, metres: float) -> tuple[float, float]:
    return lat + metres / 111_195.0, lng


def region_tag(lat: float, lng: float, settings: Settings) -> str:
    """The hash tag of the live store's keys for the region holding a position."""
    cell = h3.latlng_to_cell(lat, lng, settings.h3_resolution)
    return "{" + h3.cell_to_parent(cell, settings.live_region_resolution) + "}"


def spot_in_one_region(settings: Settings, cluster: ReplicatedCluster) -> tuple[float, float, str]:
    """A place of this test's own (the database keeps earlier runs' responders) whose two phones'
    positions lie in one region, kept by the primary the app was given as its seed (`REDIS_URL`):
    the harder failover, the app must carry on without the node it first knew. And the region's
    hash tag."""
    while True:
        lat, lng = random.uniform(-45, 45), random.uniform(-170, 170)
        tags = {region_tag(*north(lat, lng, m), settings) for m in (METRES, -METRES)}
        if len(tags) == 1 and cluster.primary_of(next(iter(tags))) == cluster.first_port:
            return lat, lng, tags.pop()


async def stream(phone: Phone, lat: float, lng: float) -> None:
    """A phone on duty: a fix every `FIX_S`, whatever the answers (errors while Redis fails over)."""
    while True:
        with contextlib.suppress(Exception):
            await phone.send({"type": "location", "lat": lat, "lng": lng, "ts": iso(), "accuracy_m": 5})
        await asyncio.sleep(FIX_S)


async def fresh_positions(
    store: LiveLocationStore, lat: float, lng: float, ids: set[str], since: float
) -> dict[str, float]:
    """Poll until a nearby query finds every one of `ids` with a fix sent after `since` (epoch
    s); returns each one's fix time. On time-out, fails saying what the last query saw."""
    seen: object = None
    try:
        async with asyncio.timeout(WAIT_S):
            while True:
                try:  # the test's own client may meet the dead node too
                    found = await store.nearby(lat, lng, 500.0)
                except Exception as exc:
                    seen = f"{type(exc).__module__}.{type(exc).__name__}: {exc}"
                else:
                    seen = times = {rid: ts for rid, ts in zip(found.responder_id, found.ts, strict=True)}
                    if ids <= times.keys() and min(times[i] for i in ids) > since:
                        return {i: times[i] for i in ids}
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"no fresh positions since {since:.2f}; the last query saw {seen!r}") from None


async def test_a_primary_killed_loses_no_alert_and_positions_come_back_within_a_fix(
    cluster: ReplicatedCluster,
    server: ServerProcess,
    store: LiveLocationStore,
    admin_headers: dict[str, str],
) -> None:
    settings = Settings()
    lat, lng, tag = spot_in_one_region(settings, cluster)
    sync = httpx.Client(base_url=server.url, timeout=30)
    r = sync.post("/v1/tokens", json={"role": "dispatcher", "label": "failover desk"}, headers=admin_headers)
    dispatcher = bearer(r.json()["token"])
    spots = north(lat, lng, METRES), north(lat, lng, -METRES)
    a, b = (on_duty_at(sync, admin_headers, *spot) for spot in spots)
    async with (
        httpx.AsyncClient(base_url=server.url, timeout=30) as http,
        Phone(server.ws_url, a["token"]) as phone_a,
        Phone(server.ws_url, b["token"]) as phone_b,
        Console(server.ws_url, dispatcher["Authorization"].split()[1]) as console,
    ):
        inbox_a, inbox_b, board = Inbox(phone_a.ws), Inbox(phone_b.ws), Inbox(console.ws)
        streams = [asyncio.create_task(stream(p, *s)) for p, s in zip((phone_a, phone_b), spots, strict=True)]
        try:
            first = await until_alerting(http, dispatcher, lat, lng)
            assert {x["responder_id"] for x in first["alerts"]} == {a["id"], b["id"]}
            alert_a = await inbox_a.wait(alert_for(first["id"]))
            alert_b = await inbox_b.wait(alert_for(first["id"]))

            # the region's keys are on the primary about to die: its data is what fails over
            primary = cluster.primary_of(tag)
            prefix = server.env["DISPATCH_REDIS_PREFIX"]
            assert cluster.keys_on(primary, f"{prefix}*{tag}*"), f"no key of region {tag} on :{primary}"
            failover: Failover = await asyncio.to_thread(cluster.kill_primary, tag)
            promoted_wall = time.time() - (time.monotonic() - failover.promoted_at)
            FIGURES["primary_killed_to_replica_promoted_s"] = round(failover.took_s, 2)

            # an accept sent while the cluster failed over is committed, and the phone gets its mission
            await phone_a.send({"type": "ack", "alert_id": alert_a["alert_id"], "response": "accept"})
            await inbox_a.wait(lambda f: f["type"] == "incident" and f["alert_id"] == alert_a["alert_id"])

            # positions: the first fixes sent after the promotion are stored and found
            times = await fresh_positions(store, lat, lng, {a["id"], b["id"]}, promoted_wall)
            back_s = time.monotonic() - failover.promoted_at
            FIGURES["promoted_to_fresh_positions_found_s"] = round(back_s, 2)
            assert max(times.values()) - promoted_wall <= FIX_S + 0.5, (times, promoted_wall)
            assert back_s <= FIX_S + 1.0, f"positions back {back_s:.2f} s after the promotion"

            # dispatch resumes by itself: a new incident alerts the phones
            fresh = await until_alerting(http, dispatcher, lat, lng)
            FIGURES["promoted_to_new_incident_alerting_s"] = round(time.monotonic() - failover.promoted_at, 2)
            assert {x["responder_id"] for x in fresh["alerts"]} >= {b["id"]}
            alert_b2 = await inbox_b.wait(alert_for(fresh["id"]))
            await phone_b.send({"type": "ack", "alert_id": alert_b2["alert_id"], "response": "accept"})
            await inbox_b.wait(lambda f: f["type"] == "incident" and f["alert_id"] == alert_b2["alert_id"])
            # the console learns of the accept sent during the outage
            await board.wait(event(first["id"], "accepted"))
            await board.wait(event(fresh["id"], "accepted"))
            assert inbox_a.open and inbox_b.open and board.open
        finally:
            for task in streams:
                task.cancel()

    # the record kept both alerts of the first incident; a phone reconnecting gets its pending one
    detail = (await asyncio.to_thread(sync.get, f"/v1/incidents/{first['id']}", headers=dispatcher)).json()
    status = {x["alert_id"]: x["status"] for x in detail["alerts"]}
    assert status[alert_a["alert_id"]] == "accepted"
    assert status[alert_b["alert_id"]] in ("sent", "delivered"), status
    async with Phone(server.ws_url, b["token"]) as again:
        await Inbox(again.ws).wait(lambda f: f["type"] == "alert" and f["alert_id"] == alert_b["alert_id"])
    accepted = [e["data"]["alert_id"] for e in detail["events"] if e["kind"] == "accepted"]
    assert accepted == [alert_a["alert_id"]]
