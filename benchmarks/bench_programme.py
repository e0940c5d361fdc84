"""The programme report over a year of a city: is counting in SQL fast enough for a planner's page?

Runs in a database of its own (made from the migrated template, dropped afterwards) on the test
server. The demo city's districts and streets (Shenzhen: 10 and 74), a community team per street,
8,000 responders each on duty for 8 hours every other day (about 1.5 million duty sessions),
20,000 incidents spread over the city's box (some fall in the sea: the `outside` row) and 8 alerts
each with a mix of answers and arrival times, all in one year's monthly partitions; written with
`generate_series` in SQL (the API would take hours to make a year). Each grouping is asked over the
whole year, the first time (cold) and the median of three more.
"""

from __future__ import annotations

import asyncio
import os
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import text

from benchmarks.common import median, table
from core.db import Database
from core.partitions import ensure_months
from programme.schemas import Grouping
from programme.service import programme_report
from simulator.service import save_city
from simulator.shenzhen import demo_city
from simulator.teams import slug
from tests.support.db import fresh_database

RESPONDERS = 8_000
INCIDENTS = 20_000
ALERTS_EACH = 8
DAYS = 365
ZONE = ZoneInfo("Asia/Shanghai")
BOX = (22.45, 113.75, 22.75, 114.60)  # min_lat, min_lng, max_lat, max_lng

TEAMS = text(
    "INSERT INTO teams (id, name, level, parent_id, path)"
    " VALUES (gen_random_uuid(), 'community-1', 3, NULL, :path)"
)
RESPONDER_ROWS = text(
    """
    INSERT INTO responders (id, external_id, name, category, team_id, mode, alert_places, active, on_duty,
                            created_at, updated_at)
    SELECT gen_random_uuid(), 'B-' || n, 'Worker ' || n, 'sanitation_worker',
           t.ids[1 + n % cardinality(t.ids)], 'walk', 'public', true, false, now(), now()
    FROM generate_series(1, :n) n, (SELECT array_agg(id ORDER BY path) AS ids FROM teams) t
    """
)
DUTY_ROWS = text(
    """
    INSERT INTO duty_sessions (responder_id, started_at, ended_at)
    SELECT r.id, on_at, on_at + interval '8 hours'
    FROM responders r, generate_series(0, :days - 1, 2) d,
         LATERAL (SELECT CAST(:start AS timestamptz)
                         + make_interval(days => d, hours => abs(hashtext(r.external_id)) % 12) AS on_at) t
    """
)
INCIDENT_ROWS = text(
    """
    INSERT INTO incidents (id, category, status, location, lat, lng, place, reach_s, coverage,
                           escalation_step, created_by, created_at, closed_at)
    SELECT gen_random_uuid(), 'cardiac_arrest', 'closed', ST_SetSRID(ST_MakePoint(lng, lat), 4326)::geography,
           lat, lng, 'public', 300, '{}'::jsonb, 0, 'bench', at, at + interval '40 minutes'
    FROM (SELECT CAST(:min_lat AS float8) + random() * CAST(:lat_span AS float8) AS lat,
                 CAST(:min_lng AS float8) + random() * CAST(:lng_span AS float8) AS lng,
                 CAST(:start AS timestamptz) + random() * make_interval(days => :days) AS at
          FROM generate_series(1, :n)) p
    """
)
ALERT_ROWS = text(
    """
    INSERT INTO alerts (id, incident_id, opened_at, responder_id, role, eta_s, distance_m, status, batch,
                        created_at, expires_at, updated_at, answered_at, aed_picked_up_at, on_scene_at)
    SELECT gen_random_uuid(), i.id, i.created_at,
           r.ids[1 + ((k * 7919 + hashtext(i.id::text)) & 4095)],
           'cpr', 200, 300, s.status, 0, i.created_at, i.created_at + interval '30 seconds',
           i.created_at + interval '40 minutes',
           CASE WHEN s.status IN ('declined', 'on_scene', 'cancelled')
                THEN i.created_at + interval '25 seconds' END,
           CASE WHEN s.status = 'on_scene' AND k = 1 THEN i.created_at + interval '150 seconds' END,
           CASE WHEN s.status = 'on_scene' THEN i.created_at + make_interval(secs => 200 + 20 * k) END
    FROM incidents i, generate_series(1, :each) k,
         (SELECT array_agg(id ORDER BY external_id) AS ids FROM responders) r,
         LATERAL (SELECT (ARRAY['on_scene', 'declined', 'expired', 'cancelled', 'declined', 'expired',
                                'on_scene', 'declined'])[k] AS status) s
    """
)


async def _seed(db: Database, start: datetime) -> None:
    city = demo_city()
    async with db.sessions() as session:
        await save_city(session, city)
        await session.commit()
    async with db.engine.begin() as conn:
        await ensure_months(conn, start, months_ahead=13)
        streets = [(d, s) for d in city.districts for s in d.streets]
        paths = [f"shenzhen/{slug(d.name)}/{slug(s.name)}/community-1" for d, s in streets]
        await conn.execute(TEAMS, [{"path": p} for p in paths])
        await conn.execute(RESPONDER_ROWS, {"n": RESPONDERS})
        await conn.execute(DUTY_ROWS, {"start": start, "days": DAYS})
        min_lat, min_lng, max_lat, max_lng = BOX
        box = {
            "min_lat": min_lat,
            "min_lng": min_lng,
            "lat_span": max_lat - min_lat,
            "lng_span": max_lng - min_lng,
        }
        await conn.execute(INCIDENT_ROWS, {**box, "start": start, "days": DAYS, "n": INCIDENTS})
        await conn.execute(ALERT_ROWS, {"each": ALERTS_EACH})
    async with db.engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("ANALYZE"))


async def _time(db: Database, start: datetime, end: datetime) -> list[list[object]]:
    rows: list[list[object]] = []
    for by in Grouping:
        samples = []
        for _ in range(4):
            t0 = time.perf_counter()
            async with db.sessions() as session:
                report = await programme_report(session, start, end, by, ZONE)
            samples.append(time.perf_counter() - t0)
        rows.append([by.value, len(report.rows), samples[0] * 1e3, median(samples[1:]) * 1e3])
    return rows


async def _run(url: str) -> str:
    db = Database(url, pool_size=2)
    end = datetime.now(UTC).replace(microsecond=0)
    start = end - timedelta(days=DAYS)
    try:
        t0 = time.perf_counter()
        await _seed(db, start)
        seeded_s = time.perf_counter() - t0
        rows = await _time(db, start, end)
    finally:
        await db.dispose()
    return "\n".join(
        [
            "## Programme report over a year of a city",
            "",
            f"Shenzhen's 10 districts and 74 streets, {RESPONDERS:,} responders on duty 8 h every other day "
            f"(~{RESPONDERS * DAYS // 2 / 1e6:.1f} M duty sessions), {INCIDENTS:,} incidents with "
            f"{ALERTS_EACH} alerts each over {DAYS} days (seeded in {seeded_s:.0f} s); "
            "`GET /v1/reports/programme` over the whole year, timed in the service (no HTTP).",
            "",
            table(["by", "rows", "first ms", "median of 3 ms"], rows),
        ]
    )


def run() -> str:
    url = os.environ.get("DATABASE_URL")
    if not url:
        raise SystemExit("DATABASE_URL not set: run through `make bench`, which starts the stores")
    with fresh_database(url, "bench_programme") as own:
        return asyncio.run(_run(own))
