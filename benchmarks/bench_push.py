"""Web Push hand-off beside the socket path: 5,000 responders, half with a socket, half reachable only
through Web Push (two devices each: 5,000 subscriptions), 100 incidents through the real app.

Each incident is timed from the moment `POST /v1/incidents` is sent: to the `alert` frame on the
socket of each alerted socket-holder, and to the push request for each alerted push-only responder
reaching the local push service (tests/support/push_service.py, which verifies the VAPID JWT and
decrypts every body like a browser would, so its work is in the figure as a real service's would be).

Who pushes: once the alert ladder is in the app, the app does, and the figure is the app's own
hand-off. Without the ladder (no push reaches the service within `APP_PUSH_WAIT_S` of the first
incident) the benchmark plays the ladder's first step itself: as soon as the POST answers, it reads
the alerts from PostgreSQL and calls the push channel's `send` for each push-only responder, in this
process, against the app's database. The report says which of the two it measured.
"""

from __future__ import annotations

import asyncio
import json
import random
import secrets
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import httpx
import websockets
from redis.asyncio import Redis

from benchmarks import dispatch_data as city
from benchmarks.common import app_env, percentile, table
from benchmarks.dispatch_sockets import Phones, _near, _tokens, raise_open_files
from core.config import Settings
from core.db import Database
from core.redis import Keys
from dispatch.channels.base import Attempt, Outcome
from dispatch.channels.push import PushChannel
from dispatch.service import alert_views
from responders.store import LiveLocationStore
from tests.support.push_service import PushServiceProcess
from tests.support.server import ServerProcess

RESPONDERS = 5000
DEVICES = 2  # per push-only responder: a phone and a second browser
INCIDENTS = 100
AEDS = 23_000
APP_PUSH_WAIT_S = 3.0
ARRIVAL_TIMEOUT_S = 5.0
SUBSCRIBING_AT_ONCE = 20
GOAL_PUSH_P99_MS = 150.0


class ReceiptPhones(Phones):
    """The socket half: note when each alert frame lands (wall clock) and confirm it, as the app does."""

    def __init__(self) -> None:
        super().__init__()
        self.alert_at: dict[str, float] = {}

    async def _listen(self, ws: websockets.ClientConnection) -> None:
        try:
            async for raw in ws:
                frame = json.loads(raw)
                if frame.get("type") == "alert":
                    self.alert_at.setdefault(frame["alert_id"], time.time())
                    await ws.send(json.dumps({"type": "received", "alert_id": frame["alert_id"]}))
        except websockets.ConnectionClosed:
            pass


@dataclass
class Handoff:
    """What the run measured: seconds from sending the POST, per alert."""

    mode: str = "app"
    socket: list[float] = field(default_factory=list)
    push: list[float] = field(default_factory=list)
    push_after_answer: list[float] = field(default_factory=list)  # from the POST's answer: the send alone
    response: list[float] = field(default_factory=list)
    socket_missing: int = 0
    push_missing: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    subscribe_s: float = 0.0


class PushArrivals:
    """alert_id -> arrival of its first push the service took (201), drained from the service."""

    def __init__(self, service: PushServiceProcess) -> None:
        self.service = service
        self.first: dict[str, float] = {}

    def __call__(self) -> dict[str, float]:
        for alert_id, status, arrived in self.service.arrivals():
            if status == 201 and alert_id is not None:
                self.first.setdefault(alert_id, arrived)
        return self.first


async def _wait(seen: Callable[[], Mapping[str, float]], ids: set[str], within_s: float) -> None:
    """Poll until every id has arrived (socket frames or pushes) or the time is up."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if ids <= seen().keys():
            return
        await asyncio.sleep(0.005)


async def _subscribe(server: ServerProcess, service: PushServiceProcess, tokens: dict[str, str]) -> float:
    """Every push-only responder subscribes `DEVICES` browsers through the API, as the page does."""
    gate = asyncio.Semaphore(SUBSCRIBING_AT_ONCE)
    t0 = time.perf_counter()
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
        first = next(iter(tokens.values()))
        key = (
            await http.get("/v1/push/vapid-public-key", headers={"Authorization": f"Bearer {first}"})
        ).json()

        async def one(responder_id: str, token: str) -> None:
            async with gate:
                for _ in range(DEVICES):
                    body = service.subscribe(key["public_key"])
                    r = await http.post(
                        f"/v1/responders/{responder_id}/push-subscriptions",
                        json=body,
                        headers={"Authorization": f"Bearer {token}"},
                    )
                    assert r.status_code == 201, r.text[:300]

        await asyncio.gather(*(one(rid, t) for rid, t in tokens.items()))
    return time.perf_counter() - t0


async def _bench_send(channel: PushChannel, db: Database, alert_ids: list[str], result: Handoff) -> None:
    """The ladder's first step, played here: read the alerts as stored, push each one."""
    async with db.sessions() as session:
        views = await alert_views(session, [uuid.UUID(a) for a in alert_ids])
    outcomes = await asyncio.gather(*(channel.send(Attempt(v, None, None, 1)) for v in views))
    for outcome in outcomes:
        result.outcomes[outcome.outcome.value] = result.outcomes.get(outcome.outcome.value, 0) + 1


async def _incident(
    http: httpx.AsyncClient, crowd: list[city.Person], rng: random.Random
) -> tuple[float, dict]:
    lat, lng = _near(rng.choice(crowd), rng, 200.0)
    t0 = time.time()
    r = await http.post("/v1/incidents", json={"lat": lat, "lng": lng, "category": "cardiac_arrest"})
    assert r.status_code == 201, r.text[:300]
    return t0, r.json()


async def _close(http: httpx.AsyncClient, incident: dict) -> None:
    closed = await http.post(f"/v1/incidents/{incident['id']}/close", json={"reason": "benchmark"})
    assert closed.status_code == 200, closed.text[:300]


def _split(incident: dict, pushed_half: set[str]) -> tuple[set[str], set[str]]:
    """(alert ids of socket-holders, alert ids of push-only responders)."""
    pushed = {a["alert_id"] for a in incident["alerts"] if a["responder_id"] in pushed_half}
    return {a["alert_id"] for a in incident["alerts"]} - pushed, pushed


async def _app_pushes(
    http: httpx.AsyncClient,
    pushes: PushArrivals,
    pushed_half: set[str],
    crowd: list[city.Person],
    rng: random.Random,
) -> bool:
    """A probe incident (not counted): does the app push by itself (the ladder is in), or not?"""
    for _ in range(20):
        _, incident = await _incident(http, crowd, rng)
        _, pushed = _split(incident, pushed_half)
        if pushed:
            await _wait(pushes, pushed, APP_PUSH_WAIT_S)
            await _close(http, incident)
            return bool(pushed & pushes().keys())
        await _close(http, incident)
    raise RuntimeError("20 probe incidents alerted no push-only responder")


async def _incidents(
    server: ServerProcess,
    dispatcher: str,
    phones: ReceiptPhones,
    service: PushServiceProcess,
    channel: PushChannel,
    db: Database,
    pushed_half: set[str],
    crowd: list[city.Person],
    rng: random.Random,
) -> Handoff:
    result = Handoff()
    pushes = PushArrivals(service)
    sends: list[asyncio.Task[None]] = []
    headers = {"Authorization": f"Bearer {dispatcher}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as http:
        result.mode = "app" if await _app_pushes(http, pushes, pushed_half, crowd, rng) else "bench"
        for _ in range(INCIDENTS):
            t0, incident = await _incident(http, crowd, rng)
            result.response.append(time.time() - t0)
            socketed, pushed = _split(incident, pushed_half)
            if pushed and result.mode == "bench":
                sends.append(asyncio.create_task(_bench_send(channel, db, sorted(pushed), result)))
            await _wait(lambda: phones.alert_at, socketed, ARRIVAL_TIMEOUT_S)
            await _wait(pushes, pushed, ARRIVAL_TIMEOUT_S)
            for ids, arrivals, samples in (
                (socketed, phones.alert_at, result.socket),
                (pushed, pushes(), result.push),
            ):
                samples.extend(arrivals[a] - t0 for a in ids if a in arrivals)
            answered = t0 + result.response[-1]
            result.push_after_answer.extend(pushes()[a] - answered for a in pushed if a in pushes())
            result.socket_missing += len(socketed - phones.alert_at.keys())
            result.push_missing += len(pushed - pushes().keys())
            await _close(http, incident)
            await asyncio.sleep(0.05)  # incidents are rare: let receipts and cancels settle
    await asyncio.gather(*sends)
    return result


async def measure(base: Settings, rng: random.Random) -> tuple[Handoff, int]:
    raise_open_files(RESPONDERS)
    bench_db = city.BenchDatabase(base.database_url, "_bench_push")
    await bench_db.create()
    prefix = "benchpush" + secrets.token_hex(3)
    keys = Keys(prefix)
    settings = base.model_copy(
        update={"staleness_s": 3600.0, "redis_prefix": prefix, "database_url": bench_db.url}
    )
    db = Database(bench_db.url, pool_size=5)
    redis = Redis.from_url(base.redis_url, decode_responses=True)
    crowd = city.people(RESPONDERS, rng)
    env = app_env(
        bench_db.url,
        base.redis_url,
        prefix,
        DISPATCH_STALENESS_S="3600",
        DISPATCH_PUSH_ALLOW_HTTP_LOOPBACK="1",
    )
    server: ServerProcess | None = None
    phones = ReceiptPhones()
    channel = PushChannel(settings, db)
    try:
        with PushServiceProcess() as service:
            await city.seed_aeds(db, AEDS, rng)
            certificate = await city.seed_responders(db, crowd, ZoneInfo(settings.timezone))
            tokens, dispatcher = await _tokens(db, crowd)
            half = RESPONDERS // 2
            server = ServerProcess(env=env).start()
            await city.go_live(LiveLocationStore(redis, keys, settings), crowd, certificate)
            push_tokens = {p.responder_id: t for p, t in zip(crowd[half:], tokens[half:], strict=True)}
            subscribe_s = await _subscribe(server, service, push_tokens)
            await phones.connect(server.ws_url, tokens[:half])
            result = await _incidents(
                server, dispatcher, phones, service, channel, db, set(push_tokens), crowd, rng
            )
            result.subscribe_s = subscribe_s
            return result, len(phones.sockets)
    finally:
        await phones.close()
        await channel.aclose()
        if server is not None:
            server.stop()
        await city.drop_keys(redis, keys)
        await redis.aclose()
        await db.dispose()
        await bench_db.drop()


def _row(name: str, samples: list[float], missing: int) -> list[object]:
    ms = [x * 1000.0 for x in samples]
    return [name, len(ms), missing, percentile(ms, 50), percentile(ms, 99), max(ms, default=0.0)]


def report(result: Handoff, sockets: int) -> str:
    rows = [
        _row("socket: alert frame on the phone", result.socket, result.socket_missing),
        _row("Web Push: request at the push service", result.push, result.push_missing),
        _row("(POST /v1/incidents answered)", result.response, 0),
        _row("(push request at the push service, from the POST's answer)", result.push_after_answer, 0),
    ]
    who = (
        "the app (the alert ladder)"
        if result.mode == "app"
        else "the benchmark playing the ladder's first step (no ladder in this build): alerts read from "
        "PostgreSQL and `PushChannel.send` called as soon as the POST answered"
    )
    p99 = percentile(result.push, 99) * 1000.0
    verdict = "met" if p99 <= GOAL_PUSH_P99_MS and not result.push_missing else "NOT met"
    return (
        "## Web Push hand-off beside the socket path\n\n"
        f"{RESPONDERS:,} responders on duty: {sockets:,} with a socket, {RESPONDERS - sockets:,} with only "
        f"push subscriptions ({DEVICES} devices each) to the local push service, {AEDS:,} AEDs; "
        f"{INCIDENTS} incidents one after another. Times from sending `POST /v1/incidents`, per alert, ms. "
        f"Pushes sent by {who}.\n\n"
        + table(["path", "alerts", "missing", "p50 ms", "p99 ms", "max ms"], rows)
        + f"\n\nPush outcomes: {result.outcomes or 'sent by the app'}; subscribing "
        f"{(RESPONDERS - sockets) * DEVICES:,} browsers through the API took {result.subscribe_s:.1f} s. "
        f"Goal: push hand-off p99 ≤ {GOAL_PUSH_P99_MS:.0f} ms: **{verdict}** ({p99:.0f} ms)."
    )


def run() -> str:
    result, sockets = asyncio.run(measure(Settings(), random.Random(17)))
    assert not result.outcomes or set(result.outcomes) == {Outcome.sent.value}, result.outcomes
    return report(result, sockets)


if __name__ == "__main__":
    print(run())
