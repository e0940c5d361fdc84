"""What the arrival watcher costs the location ingest (issue 22): gateway batches stored with the
watcher holding 200 engaged trips vs with nobody watching, in the same run, rounds taken in turn.

In process, on the test Redis under a private prefix (deleted afterwards), with the app's Redis
client and uvloop: `responders.ingest.ingest_batch` as the batch endpoint calls it, after the body's
validation (the same for both sides, so left out of the timing). 20,000 on-duty responders over
Shenzhen; 200 of them are on their way to a patient, each with a fix in every batch that crosses
nothing (the watcher judges it and writes nothing: a crossing's write is a task of its own, off the
ingest's path, and happens a few times per trip). Also the watcher's own time per 1,000-fix chunk.
"""

from __future__ import annotations

import asyncio
import gc
import os
import random
import secrets
import time
import uuid
from datetime import UTC, datetime

import uvloop

from benchmarks.common import median, table
from core.config import Settings
from core.db import Database
from core.redis import Keys, connect_redis
from dispatch.arrival import ArrivalWatcher, Engaged
from dispatch.arrival_marks import TripKey
from dispatch.fanout import Fanout
from dispatch.geofence import Point, Radii, Trip
from geo.distance import destination
from responders.availability import CertificatePeriod
from responders.ingest import Clock, ingest_batch, judge_updates
from responders.observers import NO_OBSERVER, FixObserver
from responders.schemas import BatchLocationUpdate
from responders.store import INGEST_CHUNK, LiveLocationStore, Outcome, PositionFix

BOX = (22.45, 113.75, 22.85, 114.60)  # Shenzhen: min_lat, min_lng, max_lat, max_lng
PEOPLE, ENGAGED, BATCH, ROUNDS = 20_000, 200, 5000, 15


def _updates(people: list[tuple[uuid.UUID, float, float]], rng: random.Random) -> list[BatchLocationUpdate]:
    """Everyone's next fix (a few metres from where they stand), validated as the endpoint does."""
    ts = datetime.now(UTC).isoformat()
    return [
        BatchLocationUpdate.model_validate(
            {
                "responder_id": rid,
                "lat": lat + rng.uniform(-3e-5, 3e-5),
                "lng": lng,
                "ts": ts,
                "accuracy_m": 5,
            }
        )
        for rid, lat, lng in people
    ]


def _engaged(people: list[tuple[uuid.UUID, float, float]]) -> list[Engaged]:
    """Trips for the first `ENGAGED`: accepted where they stand, the patient 300 m south."""
    now = datetime.now(UTC)
    trips = []
    for rid, lat, lng in people[:ENGAGED]:
        patient = Point(*destination(lat, lng, 300, 180))
        key = TripKey(uuid.uuid4(), now, uuid.uuid4(), str(rid))
        trips.append(Engaged(key, Trip("cpr", patient, now.timestamp() - 10, origin=Point(lat, lng))))
    return trips


async def _batch_s(
    store: LiveLocationStore, settings: Settings, batch: list[BatchLocationUpdate], observer: FixObserver
) -> float:
    """Seconds to store one gateway batch (everything stored: the fixes are fresh)."""
    t0 = time.perf_counter()
    result = await ingest_batch(store, settings, batch, observer=observer)
    elapsed = time.perf_counter() - t0
    assert result.stored == len(batch), result
    return elapsed


async def _round(
    store: LiveLocationStore,
    settings: Settings,
    sides: list[tuple[str, FixObserver]],
    people: list[tuple[uuid.UUID, float, float]],
    rng: random.Random,
) -> dict[str, float]:
    """Everyone's next fix once per side, batch by batch in turn (the order alternating per batch),
    so a noisy second on the shared machine falls on both sides alike: fixes/s per side."""
    spent = {name: 0.0 for name, _ in sides}
    for n, i in enumerate(range(0, PEOPLE, BATCH)):
        for name, observer in sides if n % 2 == 0 else sides[::-1]:
            batch = _updates(people[i : i + BATCH], rng)  # fresh timestamps: newer than those stored
            spent[name] += await _batch_s(store, settings, batch, observer)
    return {name: PEOPLE / s for name, s in spent.items()}


def _watcher_us_per_chunk(
    watcher: ArrivalWatcher, settings: Settings, updates: list[BatchLocationUpdate]
) -> float:
    """The watcher alone over a chunk of 1,000 holding 10 engaged responders' fixes (median, µs)."""
    chunk = updates[ENGAGED - 10 : ENGAGED - 10 + INGEST_CHUNK]
    fixes = judge_updates(chunk, Clock.of(settings)).fixes
    outcomes = [Outcome.stored] * len(fixes)
    samples = []
    for _ in range(200):
        t0 = time.perf_counter()
        watcher.fixes_stored(fixes, outcomes)
        samples.append((time.perf_counter() - t0) * 1e6)
    return median(samples)


async def _run() -> str:
    settings = Settings()
    redis = connect_redis(os.environ["REDIS_URL"])
    keys = Keys(f"bench-arrival-{secrets.token_hex(4)}:")
    store = LiveLocationStore(redis, keys, settings)
    rng = random.Random(22)
    people = [
        (uuid.UUID(int=rng.getrandbits(128)), rng.uniform(BOX[0], BOX[2]), rng.uniform(BOX[1], BOX[3]))
        for _ in range(PEOPLE)
    ]
    # never started: nothing crosses, so neither the database nor the fan-out is used
    radii = Radii.from_settings(settings)
    watcher = ArrivalWatcher(Database(settings.database_url), Fanout(redis, keys), radii, asyncio.Event())
    watcher.engage(_engaged(people))
    assert len(watcher.by_responder) == ENGAGED
    try:
        now = int(time.time())
        cert = [CertificatePeriod("cpr", now - 86_400, now + 86_400 * 365)]
        await store.set_profiles([(str(rid), "walk", cert) for rid, _, _ in people])
        await store.ingest([PositionFix(str(rid), lat, lng, time.time() - 5) for rid, lat, lng in people])
        sides: list[tuple[str, FixObserver]] = [
            ("nobody watching", NO_OBSERVER),
            ("watcher, 200 engaged trips", watcher),
        ]
        await _round(store, settings, sides, people, rng)  # warm-up (scripts loaded, pages written), not kept
        gc.collect()
        gc.freeze()
        gc.set_threshold(20_000, 20, 10)  # as each app worker sets it (`dispatch.app`)
        rates: dict[str, list[float]] = {name: [] for name, _ in sides}
        for _ in range(ROUNDS):
            for name, rate in (await _round(store, settings, sides, people, rng)).items():
                rates[name].append(rate)
        assert watcher.crossed.qsize() == 0  # standing still: judged, nothing crossed
        per_chunk_us = _watcher_us_per_chunk(watcher, settings, _updates(people, rng))
    finally:
        async for key in redis.scan_iter(match=keys("*"), count=5000):
            await redis.unlink(key)
        await store.aclose()
        await redis.aclose()
    base, watched = (median(v) for v in rates.values())
    paired = median([w / b for b, w in zip(*rates.values(), strict=True)])  # round by round
    rows = [[name, median(v), min(v), max(v)] for name, v in rates.items()]
    return "\n".join(
        [
            "## Arrival watcher: gateway batch ingest with and without it",
            "",
            f"{PEOPLE:,} on-duty responders over Shenzhen, everyone's next fix per round through"
            f" `responders.ingest.ingest_batch` in gateway batches of {BATCH:,} (validated beforehand, as"
            f" the endpoint does, and not timed), {ROUNDS} rounds after an untimed warm-up; within a round"
            " the two sides store their batches in turn (the order alternating per batch); the collector's"
            f" thresholds and frozen heap as in an app worker. The watcher holds {ENGAGED} engaged trips"
            " whose responders are in each round's first batch, standing still: each of their fixes is"
            " judged by the geofences and crosses nothing.",
            "",
            table(["side", "median fixes/s", "min", "max"], rows),
            "",
            f"Ratio of medians (watcher / nobody): **{watched / base:.3f}**; median of the rounds' own"
            f" ratios: {paired:.3f}. The watcher alone over a"
            f" 1,000-fix chunk holding 10 engaged responders' fixes: {per_chunk_us:.0f} µs (median of 200),"
            f" i.e. {per_chunk_us / INGEST_CHUNK * 1000:.0f} ns a fix: at 70,000 fixes/s (70 chunks),"
            f" {per_chunk_us * 70 / 1000:.1f} ms of one core each second ({per_chunk_us * 70 / 1e4:.2f} %)."
            " App, Redis and the harness share the 2 cores with other work (other test runs): a round's"
            " rate moves by tens of per cent, which is why the sides alternate batch by batch.",
        ]
    )


def run() -> str:
    if not os.environ.get("REDIS_URL"):
        raise SystemExit("REDIS_URL not set: run through `make bench`, which starts the stores")
    return uvloop.run(_run())
