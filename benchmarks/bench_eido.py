"""EIDO in to the first alert frame (issue 19): an emergency centre's incident, from the moment
its EIDO is posted to `POST /v1/cad/eido` to the first `alert` frame on an alerted phone, beside
the same figure for `POST /v1/incidents` in the same run (same server, same crowd, same phones).
The goal is the console's: p99 within 100 ms. Parsing the EIDO and its PIDF-LO is timed alone too.
"""

from __future__ import annotations

import asyncio
import os
import random

from redis.asyncio import Redis

from benchmarks import dispatch_data as city
from benchmarks.common import median, percentile, table, time_calls
from benchmarks.dispatch_sockets import AlertLatency, alert_latencies, by_console, by_eido, eido_point
from cad.eido import parse_eido
from core.config import Settings

SOCKETS = 1000
INCIDENTS = 100


async def _run() -> tuple[dict[str, AlertLatency], list[float]]:
    base = Settings()
    bench_db = city.BenchDatabase(base.database_url, suffix="_bench_eido")
    await bench_db.create()
    redis = Redis.from_url(base.redis_url, decode_responses=True)
    try:
        runs = await alert_latencies(
            base, bench_db, random.Random(19), {"console": by_console, "eido": by_eido}, SOCKETS, INCIDENTS
        )
    finally:
        await redis.aclose()
        await bench_db.drop()
    doc = eido_point(22.5431, 114.0579)
    return runs, time_calls(lambda: parse_eido(doc), 2000)


def _row(name: str, r: AlertLatency) -> list[object]:
    ms = [x * 1e3 for x in r.first_alert]
    response = [x * 1e3 for x in r.response]
    return [name, f"{median(ms):.1f}", f"{percentile(ms, 99):.1f}", f"{median(response):.1f}", r.missing]


def run() -> str:
    if not os.environ.get("DATABASE_URL"):
        raise SystemExit("DATABASE_URL not set: run through `make bench`, which starts the stores")
    runs, parse = asyncio.run(_run())
    rows = [
        _row("EIDO → first alert frame", runs["eido"]),
        _row("POST /v1/incidents → first alert frame", runs["console"]),
    ]
    return "\n".join(
        [
            "## Emergency centres: EIDO in to the first alert",
            "",
            "`python -m benchmarks eido` (about a minute). A private database (`<test db>_bench_eido`)"
            " and Redis key prefix, both removed at the end.",
            "",
            f"### EIDO in to first alert ({SOCKETS:,} responder websockets, {INCIDENTS} incidents each way)",
            "",
            "One uvicorn worker; each incident is timed from sending its request to the first `alert`"
            " frame on an alerted phone, then closed. The EIDO carries a PIDF-LO point; its"
            " parsing alone (EIDO and PIDF-LO, in-process) takes"
            f" {median(parse) * 1e6:.0f} µs (p99 {percentile(parse, 99) * 1e6:.0f} µs). Goal: p99 ≤ 100 ms.",
            "",
            table(["path", "p50 ms", "p99 ms", "response p50 ms", "never arrived"], rows),
        ]
    )
