"""Responder CSV import at 100,000 rows: its total time, and how long /healthz waits meanwhile.

The import shares the event loop with alerts and sockets, so the longest /healthz answer during it
is the longest a dispatcher or a phone could be kept waiting (16-22 s before imports were parsed in
a thread and written in chunks). A probe calls /healthz every 50 ms against a real server.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time

import asyncpg
import httpx

from benchmarks.common import app_env, percentile, table
from tests.support.db import plain_dsn
from tests.support.server import ServerProcess

ROWS = 100_000
HEADER = (
    "external_id,name,phone,category,team,mode,"
    "cert_kind,cert_number,cert_issuer,cert_valid_from,cert_valid_until"
)


def _csv(run: str) -> str:
    lines = [HEADER]
    for i in range(ROWS):
        lines.append(
            f"{run}-{i},Person {i},+86 {i},sanitation_worker,futian/t{i % 50},walk,"
            f"cpr,N{i},Red Cross,2025-01-01,2027-12-31"
        )
    return "\n".join(lines) + "\n"


async def _timed_import(client: httpx.AsyncClient, body: str, token: str) -> tuple[float, list[float], dict]:
    latencies: list[float] = []
    done = asyncio.Event()

    async def probe() -> None:
        async with httpx.AsyncClient(base_url=client.base_url, timeout=600) as prober:
            while not done.is_set():
                started = time.perf_counter()
                await prober.get("/healthz")
                latencies.append(time.perf_counter() - started)
                await asyncio.sleep(0.05)

    task = asyncio.create_task(probe())
    started = time.perf_counter()
    r = await client.post(
        "/v1/responders/import",
        content=body,
        headers={"Authorization": f"Bearer {token}", "content-type": "text/csv"},
    )
    total = time.perf_counter() - started
    done.set()
    await task
    r.raise_for_status()
    return total, latencies, r.json()


async def _run() -> str:
    token = "bench-admin-" + secrets.token_hex(8)
    env = app_env(
        os.environ["DATABASE_URL"],
        os.environ["REDIS_URL"],
        "bench" + secrets.token_hex(3),
        DISPATCH_ADMIN_TOKEN=token,
    )
    run = "BENCHIMP" + secrets.token_hex(3)
    body = _csv(run)
    server = ServerProcess(env=env).start()
    rows = []
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=600) as client:
            for label in ("first import (all new)", "re-import (all unchanged)"):
                total, latencies, report = await _timed_import(client, body, token)
                rows.append(
                    [
                        label,
                        f"{report['created']:,} / {report['unchanged']:,}",
                        total,
                        f"{ROWS / total:,.0f}",
                        max(latencies),
                        percentile(latencies, 99),
                        len(latencies),
                    ]
                )
    finally:
        server.stop()
        conn = await asyncpg.connect(plain_dsn(os.environ["DATABASE_URL"]))
        try:
            await conn.execute("DELETE FROM responders WHERE external_id LIKE $1", f"{run}-%")
        finally:
            await conn.close()
    headers = [
        "run",
        "created / unchanged",
        "total s",
        "rows/s",
        "worst /healthz s",
        "p99 /healthz s",
        "probes",
    ]
    return f"## Responder CSV import ({ROWS:,} rows)\n\n" + table(headers, rows)


def run() -> str:
    return asyncio.run(_run())
