"""AED registry: `nearby_available` (GiST KNN in batches) vs a plain `ST_DWithin` + sort, and bulk import.

Runs in a private database (`<test db>_bench_aeds`, created and dropped here) on the test server, so
the shared test data is untouched. AEDs are spread uniformly over a Shenzhen-sized box with the mix
of opening hours real registries have; queries come from random points and random times.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from datetime import UTC, datetime, timedelta

import asyncpg
from sqlalchemy import text

from aed_registry.availability import AedSpot, HoursPolicy, pick_available
from aed_registry.importers import parse_csv
from aed_registry.models import Aed, AedEvent, AedReport
from aed_registry.service import import_records, nearby_available
from benchmarks.common import median, percentile, table
from core.config import Settings
from core.db import Base, Database
from tests.support.db import plain_dsn

BOX = (22.45, 113.75, 22.75, 114.60)  # Shenzhen, roughly: min_lat, min_lng, max_lat, max_lng
HOURS = ["24/7"] * 5 + [
    "Mo-Fr 08:00-18:00; PH off",
    "Mo-Su 06:30-23:00",
    "Mo-Fr 09:00-17:00",
    "ask the guard",
]
QUERIES = 400
PLAIN_RADIUS_M = 2000.0  # what a dispatcher would otherwise ask for: everything within reach, sorted
PLAIN_SQL = text(
    """
    SELECT a.id, a.external_id, a.name, ST_Y(a.location::geometry) AS lat, ST_X(a.location::geometry) AS lng,
           a.opening_hours, a.access, a.location_detail
    FROM aeds a
    WHERE ST_DWithin(a.location, ST_SetSRID(ST_MakePoint(:lng, :lat), 4326)::geography, :r)
      AND a.status = 'active'
      AND NOT EXISTS (SELECT 1 FROM aed_reports r WHERE r.aed_id = a.id AND r.resolved_at IS NULL
                      AND r.kind IN ('missing', 'broken'))
    ORDER BY ST_Distance(a.location, ST_SetSRID(ST_MakePoint(:lng, :lat), 4326)::geography, false)
    """
)


def synthetic_csv(n: int, start: int, rng: random.Random) -> str:
    lines = ["ref,name,lat,lng,opening_hours"]
    for i in range(start, start + n):
        lat, lng = rng.uniform(BOX[0], BOX[2]), rng.uniform(BOX[1], BOX[3])
        lines.append(f"B-{i},AED {i},{lat:.7f},{lng:.7f},{rng.choice(HOURS)}")
    return "\n".join(lines)


async def _import(db: Database, n: int, start: int, rng: random.Random) -> float:
    t0 = time.perf_counter()
    report = parse_csv(synthetic_csv(n, start, rng))
    async with db.sessions() as session:
        await import_records(session, report, "bench")
        await session.commit()
    return time.perf_counter() - t0


async def _nearby(
    db: Database, settings: Settings, rng: random.Random
) -> tuple[list[float], list[float], int]:
    """Latencies of the service and of the plain query (+ the same hours filter); and disagreements."""
    policy = HoursPolicy.from_settings(settings)
    ours, plain, differ = [], [], 0
    async with db.sessions() as session:
        for _ in range(QUERIES):
            lat, lng = rng.uniform(BOX[0], BOX[2]), rng.uniform(BOX[1], BOX[3])
            at = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=rng.randrange(525_600))
            t0 = time.perf_counter()
            got = await nearby_available(session, lat, lng, at=at, limit=3, settings=settings)
            t1 = time.perf_counter()
            rows = (await session.execute(PLAIN_SQL, {"lat": lat, "lng": lng, "r": PLAIN_RADIUS_M})).all()
            spots = [
                AedSpot(str(r.id), r.external_id, r.name, r.lat, r.lng, r.opening_hours, r.access, None)
                for r in rows
            ]
            alt = pick_available(spots, at, policy, 3)
            t2 = time.perf_counter()
            ours.append(t1 - t0)
            plain.append(t2 - t1)
            within = [a.id for a in got if a.distance_m <= PLAIN_RADIUS_M]
            differ += within != [s.id for s in alt][: len(within)]
    return ours, plain, differ


async def _run() -> str:
    base = Settings()
    name = make_name(base.database_url)
    admin = await asyncpg.connect(plain_dsn(base.database_url))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = base.database_url.rsplit("/", 1)[0] + f"/{name}"
    settings = base.model_copy(update={"database_url": url})
    db = Database(url, pool_size=2)
    rng = random.Random(5)
    rows = []
    try:
        async with db.engine.begin() as conn:
            await conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
            tables = [Aed.__table__, AedReport.__table__, AedEvent.__table__]
            await conn.run_sync(lambda c: Base.metadata.create_all(c, tables=tables))
        import_23k = await _import(db, 23_000, 0, rng)
        for size, extra in ((23_000, 0), (200_000, 177_000)):
            if extra:
                await _import(db, extra, 23_000, rng)
            async with db.engine.begin() as conn:
                await conn.execute(text("ANALYZE aeds"))
            ours, plain, differ = await _nearby(db, settings, rng)
            ratio = f"{median(plain) / median(ours):.1f}x the KNN median"
            rows.append([f"{size:,}", "nearby_available (KNN batches)", *_ms(ours), ""])
            rows.append([f"{size:,}", f"ST_DWithin {PLAIN_RADIUS_M:.0f} m + sort", *_ms(plain), ratio])
            assert differ == 0, f"{differ} answers differ from the plain query"
    finally:
        await db.dispose()
        admin = await asyncpg.connect(plain_dsn(base.database_url))
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        finally:
            await admin.close()
    return "\n".join(
        [
            "## AED registry: nearest available AED and bulk import",
            "",
            f"Random points and times in a Shenzhen-sized box, {QUERIES} queries per row, limit 3, hours mix "
            f"{len(set(HOURS))} distinct strings (one unparseable). The plain alternative fetches every "
            f"active, unblocked AED within {PLAIN_RADIUS_M:.0f} m sorted by distance and applies the same "
            "opening-hours filter; both gave the same AEDs on every query.",
            "",
            table(["AEDs", "query", "p50 ms", "p99 ms", "ratio"], rows),
            "",
            "Import of 23,000 CSV rows (parse, validate, upsert, history), one transaction: "
            f"**{import_23k:.1f} s** (goal: under 10 s).",
        ]
    )


def _ms(samples: list[float]) -> list[float]:
    return [median(samples) * 1e3, percentile(samples, 99) * 1e3]


def make_name(url: str) -> str:
    return url.rsplit("/", 1)[1].split("?")[0] + "_bench_aeds"


def run() -> str:
    if not os.environ.get("DATABASE_URL"):
        raise SystemExit("DATABASE_URL not set: run through `make bench`, which starts the stores")
    return asyncio.run(_run())
