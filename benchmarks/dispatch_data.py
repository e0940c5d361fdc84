"""The dispatch benchmarks' city: a private database, 23,000 AEDs, responders in Postgres and Redis.

Everything is written the fast way the service itself offers (the AED bulk upsert, multi-row
`unnest` inserts, the live store's Lua ingest), so seeding takes seconds and the run stays within
its time budget. The database is private (`<test db>_bench_dispatch`, migrated with Alembic and
dropped at the end) so the shared test database is untouched and no other engineer's running
server (its escalation clock scans every open incident) ever sees the benchmark's incidents.
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from redis.asyncio import Redis
from sqlalchemy import text

from aed_registry.store import AedStore
from benchmarks.bench_aeds import HOURS
from core.db import Database
from core.redis import Keys
from responders.availability import CertificatePeriod, certificate_period
from responders.store import LiveLocationStore, PositionFix
from tests.support.db import plain_dsn

ROOT = Path(__file__).resolve().parent.parent
BOX = (22.45, 113.75, 22.85, 114.60)  # Shenzhen: min_lat, min_lng, max_lat, max_lng
# How city workers get about (sanitation crews walk or ride e-bikes; a few inspectors drive).
MODES = ("walk", "ebike", "bicycle", "run", "car")
MODE_WEIGHTS = (0.45, 0.30, 0.15, 0.05, 0.05)
INGEST_BATCH = 5000


@dataclass(frozen=True, slots=True)
class Person:
    """A responder as the benchmark places them: id, position, profile travel mode."""

    responder_id: str
    lat: float
    lng: float
    mode: str


def random_point(rng: random.Random, margin: float = 0.0) -> tuple[float, float]:
    """A uniform (lat, lng) in the box, `margin` degrees away from its edges."""
    return (
        rng.uniform(BOX[0] + margin, BOX[2] - margin),
        rng.uniform(BOX[1] + margin, BOX[3] - margin),
    )


def people(n: int, rng: random.Random) -> list[Person]:
    modes = rng.choices(MODES, MODE_WEIGHTS, k=n)
    return [Person(str(uuid.UUID(int=rng.getrandbits(128))), *random_point(rng), mode) for mode in modes]


# --- the private database ---------------------------------------------------------------------------
class BenchDatabase:
    """A database of its own on the test server, migrated to head; `drop()` removes it entirely."""

    def __init__(self, base_url: str, suffix: str = "_bench_dispatch") -> None:
        self.base_url = base_url
        self.name = base_url.rsplit("/", 1)[1].split("?")[0] + suffix
        self.url = base_url.rsplit("/", 1)[0] + f"/{self.name}"

    async def create(self) -> None:
        await self._admin(
            f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)', f'CREATE DATABASE "{self.name}"'
        )
        # Alembic runs its own event loop: a child process keeps it away from ours.
        env = {**os.environ, "DATABASE_URL": self.url}
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "alembic", "upgrade", "head", cwd=ROOT, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, err = await child.communicate()
        if child.returncode != 0:
            raise RuntimeError(f"migrating the benchmark database failed:\n{err.decode()[-3000:]}")

    async def drop(self) -> None:
        await self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')

    async def _admin(self, *statements: str) -> None:
        conn = await asyncpg.connect(plain_dsn(self.base_url))
        try:
            for sql in statements:
                await conn.execute(sql)
        finally:
            await conn.close()


async def seed_aeds(db: Database, n: int, rng: random.Random) -> None:
    """`n` active public AEDs over the box with a real registry's mix of opening hours (bulk upsert)."""
    now = datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    for i in range(n):
        lat, lng = random_point(rng)
        row: dict[str, Any] = {f: None for f in ("address", "location_detail", "contact", "last_checked")}
        row.update(
            id=str(uuid.uuid4()), lat=lat, lng=lng, external_id=f"BENCH-AED-{i}", name=f"AED {i}",
            opening_hours=rng.choice(HOURS), opening_hours_error=None, access="public", status="active",
            source="bench", created_at=now,
        )  # fmt: skip
        rows.append(row)
    async with db.sessions() as session:
        await AedStore(session).upsert(rows)
        await session.commit()
    async with db.engine.begin() as conn:
        await conn.execute(text("ANALYZE aeds"))


_INSERT_RESPONDERS = """
INSERT INTO responders (id, external_id, name, category, mode, active, on_duty, created_at, updated_at)
SELECT u.id, u.external_id, u.name, 'sanitation_worker', u.mode, true, true, now(), now()
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[]) AS u(id, external_id, name, mode)
"""
# The same record of duty as `responders.duty_log` writes for a duty change through the API, so the
# service record and the programme report count these responders' time on duty too.
_OPEN_DUTY_SESSIONS = """
INSERT INTO duty_sessions (responder_id, started_at) SELECT u.rid, now() FROM unnest($1::uuid[]) AS u(rid)
"""
_INSERT_CERTIFICATES = """
INSERT INTO certificates (id, responder_id, kind, number, issuer, valid_from, valid_until, verified)
SELECT gen_random_uuid(), u.rid, 'first_aid', 'RC-' || u.rid::text, 'Shenzhen Red Cross', $2, $3, true
FROM unnest($1::uuid[]) AS u(rid)
"""


async def seed_responders(db: Database, crowd: list[Person], tz: ZoneInfo) -> CertificatePeriod:
    """Registry rows for `crowd`, on duty (each with a duty session open) and a first-aid certificate
    valid now; returns the certificate's period."""
    today = date.today()
    valid_from, valid_until = today - timedelta(days=365), today + timedelta(days=365)
    ids = [uuid.UUID(p.responder_id) for p in crowd]
    async with db.engine.begin() as conn:
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        await driver.execute(
            _INSERT_RESPONDERS,
            ids,
            [f"BENCH-{p.responder_id[:13]}" for p in crowd],
            [f"Responder {i}" for i in range(len(crowd))],
            [p.mode for p in crowd],
        )
        await driver.execute(_OPEN_DUTY_SESSIONS, ids)
        await driver.execute(_INSERT_CERTIFICATES, ids, valid_from, valid_until)
    return certificate_period("first_aid", valid_from, valid_until, tz)


async def go_live(store: LiveLocationStore, crowd: list[Person], certificate: CertificatePeriod) -> None:
    """On duty in the live store with a fresh position each: profiles, then the Lua ingest in batches."""
    await store.set_profiles([(p.responder_id, p.mode, [certificate]) for p in crowd])
    now = time.time()
    for i in range(0, len(crowd), INGEST_BATCH):
        fixes = [PositionFix(p.responder_id, p.lat, p.lng, now) for p in crowd[i : i + INGEST_BATCH]]
        await store.ingest(fixes)


async def drop_keys(redis: Redis, keys: Keys) -> None:
    """Delete every key under the benchmark's own prefix (never anything else)."""
    async for key in redis.scan_iter(match=keys("*"), count=5000):
        await redis.unlink(key)
