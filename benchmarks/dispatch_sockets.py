"""Incident-to-alert latency through the real app, with thousands of responder phones connected.

One uvicorn worker of the app runs as a child process against the benchmark's private database;
this process plays the phones (every socket in one asyncio loop, no client pings) and the
dispatcher, or an emergency centre's CAD. Each incident is timed from the moment its request
(`POST /v1/incidents`, or an EIDO to `POST /v1/cad/eido`: an `Opener`) is sent to the moment the
first `alert` frame for it reaches any alerted phone: plan, the Postgres transaction, the Redis
publish, the relay and the websocket write are all inside the figure.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import resource
import secrets
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import httpx
import websockets
from redis.asyncio import Redis

from benchmarks import dispatch_data as city
from benchmarks.common import app_env
from cad.eido import TRACKING_ID
from core.auth import Role, issue_token
from core.config import Settings
from core.db import Database
from core.redis import Keys
from responders.store import LiveLocationStore
from tests.support.server import ServerProcess

SOCKETS = 5000
INCIDENTS = 100
CONNECTING_AT_ONCE = 200  # phones opening their socket at the same moment
ALERT_TIMEOUT_S = 5.0
M_PER_DEG = 111_195.0


def raise_open_files(sockets: int) -> int:
    """Lift this process's soft descriptor limit (the server child inherits it); returns the new one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 2 * sockets + 1024
    ceiling = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft < ceiling:
        resource.setrlimit(resource.RLIMIT_NOFILE, (ceiling, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


@dataclass
class AlertLatency:
    """What the run measured; times in seconds."""

    connect_s: float
    connected: int
    first_alert: list[float] = field(default_factory=list)
    response: list[float] = field(default_factory=list)
    alerts_sent: int = 0
    alert_frames: int = 0
    missing: int = 0  # incidents with alerts whose first frame never arrived


class Phones:
    """Every responder's socket in one loop; notes when each incident's first alert frame lands."""

    def __init__(self) -> None:
        self.sockets: list[websockets.ClientConnection] = []
        self.first_alert: dict[str, float] = {}
        self.frames: Counter[str] = Counter()
        self.arrived: dict[str, asyncio.Event] = {}
        self.listeners: list[asyncio.Task[None]] = []

    async def connect(self, ws_url: str, tokens: list[str]) -> float:
        """Open one socket per token, `CONNECTING_AT_ONCE` at a time; returns the wall time taken."""
        gate = asyncio.Semaphore(CONNECTING_AT_ONCE)

        async def one(token: str) -> None:
            async with gate:
                ws = await websockets.connect(
                    f"{ws_url}/v1/ws/responder?token={token}", ping_interval=None, open_timeout=60
                )
            self.sockets.append(ws)
            self.listeners.append(asyncio.create_task(self._listen(ws)))

        t0 = time.perf_counter()
        await asyncio.gather(*(one(t) for t in tokens))
        return time.perf_counter() - t0

    async def _listen(self, ws: websockets.ClientConnection) -> None:
        try:
            async for raw in ws:
                frame = json.loads(raw)
                if frame.get("type") == "alert":
                    incident_id = frame["incident_id"]
                    self.first_alert.setdefault(incident_id, time.perf_counter())
                    self.frames[incident_id] += 1
                    self._event(incident_id).set()
        except websockets.ConnectionClosed:
            pass

    def _event(self, incident_id: str) -> asyncio.Event:
        return self.arrived.setdefault(incident_id, asyncio.Event())

    async def wait_first(self, incident_id: str) -> float | None:
        """perf_counter() of the incident's first alert frame, or None after the timeout."""
        try:
            await asyncio.wait_for(self._event(incident_id).wait(), ALERT_TIMEOUT_S)
        except TimeoutError:
            return None
        return self.first_alert[incident_id]

    async def close(self) -> None:
        await asyncio.gather(*(ws.close() for ws in self.sockets), return_exceptions=True)
        for task in self.listeners:
            task.cancel()
        await asyncio.gather(*self.listeners, return_exceptions=True)


def _near(person: city.Person, rng: random.Random, within_m: float) -> tuple[float, float]:
    """A patient a short walk from a responder, so every incident alerts somebody."""
    distance, bearing = within_m * math.sqrt(rng.random()), rng.uniform(0, 2 * math.pi)
    north, east = distance * math.cos(bearing), distance * math.sin(bearing)
    return person.lat + north / M_PER_DEG, person.lng + east / (
        M_PER_DEG * math.cos(math.radians(person.lat))
    )


BENCH_AGENCY = "bench.centre.example"


@dataclass(frozen=True)
class Desks:
    """The tokens that open incidents: a dispatcher's, and an emergency centre's CAD's."""

    dispatcher: str
    cad: str


Opener = Callable[[httpx.AsyncClient, Desks, float, float], Awaitable[tuple[str, int]]]
"""Opens one incident at (lat, lng) for a cardiac arrest; returns its id and how many it alerted."""


async def by_console(http: httpx.AsyncClient, desks: Desks, lat: float, lng: float) -> tuple[str, int]:
    body = {"lat": lat, "lng": lng, "category": "cardiac_arrest"}
    r = await http.post("/v1/incidents", json=body, headers={"Authorization": f"Bearer {desks.dispatcher}"})
    assert r.status_code == 201, r.text[:300]
    return r.json()["id"], len(r.json()["alerts"])


async def by_eido(http: httpx.AsyncClient, desks: Desks, lat: float, lng: float) -> tuple[str, int]:
    r = await http.post(
        "/v1/cad/eido", json=eido_point(lat, lng), headers={"Authorization": f"Bearer {desks.cad}"}
    )
    assert r.status_code == 201, r.text[:300]
    return r.json()["incident_id"], r.json()["alerts"]


def eido_point(lat: float, lng: float) -> dict[str, object]:
    """A minimal EIDO: a new tracking id, a cardiac arrest, a PIDF-LO point."""
    tracking_id = f"urn:emergency:uid:incidentid:{uuid.uuid4().hex}:{BENCH_AGENCY}"
    assert TRACKING_ID.match(tracking_id)
    pidf = (
        '<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:gp="urn:ietf:params:xml:ns:pidf:geopriv10"'
        ' xmlns:gml="http://www.opengis.net/gml" entity="pres:bench@example"><tuple id="t"><status>'
        '<gp:geopriv><gp:location-info><gml:Point srsName="urn:ogc:def:crs:EPSG::4326">'
        f"<gml:pos>{lat:.7f} {lng:.7f}</gml:pos></gml:Point></gp:location-info></gp:geopriv></status>"
        "</tuple></presence>"
    )
    return {
        "incidentComponent": {
            "incidentTrackingIdentifier": tracking_id,
            "lastUpdateTimeStamp": "2026-11-29T19:00:00+08:00",
            "incidentTypeCommonRegistryText": "cardiac_arrest",
        },
        "locationComponent": [{"$id": "loc-1", "locationByValue": pidf}],
    }


async def _tokens(db: Database, crowd: list[city.Person]) -> tuple[list[str], Desks]:
    """A responder token per person (as the registry issues them), a dispatcher's and a CAD's."""
    async with db.sessions() as session:
        tokens = [
            (await issue_token(session, Role.responder, "bench", uuid.UUID(p.responder_id)))[1] for p in crowd
        ]
        dispatcher = (await issue_token(session, Role.dispatcher, "bench-dispatcher"))[1]
        cad = (await issue_token(session, Role.cad, "bench-cad", agency=BENCH_AGENCY))[1]
        await session.commit()
    return tokens, Desks(dispatcher, cad)


async def _incidents(
    server: ServerProcess,
    desks: Desks,
    phones: Phones,
    crowd: list[city.Person],
    rng: random.Random,
    opener: Opener,
    count: int,
) -> AlertLatency:
    result = AlertLatency(connect_s=0.0, connected=len(phones.sockets))
    headers = {"Authorization": f"Bearer {desks.dispatcher}"}
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        for _ in range(count):
            lat, lng = _near(rng.choice(crowd), rng, 200.0)
            t0 = time.perf_counter()
            incident_id, alerts = await opener(http, desks, lat, lng)
            result.response.append(time.perf_counter() - t0)
            result.alerts_sent += alerts
            if alerts:
                arrived = await phones.wait_first(incident_id)
                if arrived is None:
                    result.missing += 1
                else:
                    result.first_alert.append(arrived - t0)
            closed = await http.post(
                f"/v1/incidents/{incident_id}/close", json={"reason": "benchmark"}, headers=headers
            )
            assert closed.status_code == 200, closed.text[:300]
            await asyncio.sleep(0.05)  # let delivery receipts and cancels settle: incidents are rare
    await asyncio.sleep(1.0)
    result.alert_frames = sum(phones.frames.values())
    return result


async def incident_to_alert(base: Settings, bench_db: city.BenchDatabase, rng: random.Random) -> AlertLatency:
    """Seed `SOCKETS` responders, start the app, connect every phone, then time `INCIDENTS` incidents
    opened from the console."""
    runs = await alert_latencies(base, bench_db, rng, {"console": by_console}, SOCKETS, INCIDENTS)
    return runs["console"]


async def alert_latencies(
    base: Settings,
    bench_db: city.BenchDatabase,
    rng: random.Random,
    openers: dict[str, Opener],
    sockets: int,
    incidents: int,
) -> dict[str, AlertLatency]:
    """Seed `sockets` responders, start the app, connect every phone, then time `incidents`
    incidents with each opener in turn (same crowd, same server)."""
    raise_open_files(sockets)
    prefix = "benchws" + secrets.token_hex(3)
    keys = Keys(prefix)
    settings = base.model_copy(update={"staleness_s": 3600.0, "redis_prefix": prefix})
    db = Database(bench_db.url, pool_size=2)
    redis = Redis.from_url(base.redis_url, decode_responses=True)
    crowd = city.people(sockets, rng)
    env = app_env(bench_db.url, base.redis_url, prefix, DISPATCH_STALENESS_S="3600")
    server: ServerProcess | None = None
    phones = Phones()
    try:
        certificate = await city.seed_responders(db, crowd, ZoneInfo(settings.timezone))
        tokens, desks = await _tokens(db, crowd)
        server = ServerProcess(env=env).start()
        await city.go_live(LiveLocationStore(redis, keys, settings), crowd, certificate)
        connect_s = await phones.connect(server.ws_url, tokens)
        runs = {}
        for name, opener in openers.items():
            runs[name] = await _incidents(server, desks, phones, crowd, rng, opener, incidents)
            runs[name].connect_s = connect_s
        return runs
    finally:
        await phones.close()
        if server is not None:
            server.stop()
        await city.drop_keys(redis, keys)
        await redis.aclose()
        await db.dispose()
