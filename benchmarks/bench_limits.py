"""What the rate limiter adds to a request: the same server with limits on and off.

Location ingest is the hot path (a gateway posts batches of up to 5,000 fixes; a phone without a
socket posts one fix at a time), so both are timed: one request at a time from one client, the
server's wall time as the client sees it. The limiter checks the client address and the token in
Redis concurrently (one round trip each, in parallel) before the request reaches the app.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import time
from datetime import UTC, datetime

import httpx

from benchmarks.common import app_env, percentile, table
from core.config import Settings
from tests.support.server import ServerProcess

SINGLE_REQUESTS = 1500
BATCHES = 40
BATCH_SIZE = 5000


def _fix(responder_id: str, rng: random.Random) -> dict[str, object]:
    return {
        "responder_id": responder_id,
        "lat": 22.5 + rng.uniform(0, 0.1),
        "lng": 114.0 + rng.uniform(0, 0.1),
        "ts": datetime.now(UTC).isoformat(),
    }


async def _timed(client: httpx.AsyncClient, count: int, body: object, headers: dict[str, str]) -> list[float]:
    samples = []
    for _ in range(count):
        t0 = time.perf_counter()
        r = await client.post("/v1/locations", json=body, headers=headers)
        samples.append(time.perf_counter() - t0)
        assert r.status_code == 200, r.text
    return samples


async def _round(limits_on: bool, settings: Settings) -> tuple[list[float], list[float]]:
    admin = "bench-" + secrets.token_hex(8)
    env = app_env(
        settings.database_url,
        settings.redis_url,
        "benchlim" + secrets.token_hex(3),
        DISPATCH_ADMIN_TOKEN=admin,
        DISPATCH_RATE_LIMIT_ENABLED="1" if limits_on else "0",
    )
    server = ServerProcess(env=env).start()
    rng = random.Random(3)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
            headers = {"Authorization": f"Bearer {admin}"}
            # unknown responders: ingest validates, looks them up in Redis and counts them, as for real
            one = {"updates": [_fix(str(secrets.token_hex(16)), rng)]}
            batch = {"updates": [_fix(secrets.token_hex(16), rng) for _ in range(BATCH_SIZE)]}
            await _timed(client, 50, one, headers)  # warm-up
            singles = await _timed(client, SINGLE_REQUESTS, one, headers)
            batches = await _timed(client, BATCHES, batch, headers)
    finally:
        server.stop()
    return singles, batches


def run() -> str:
    settings = Settings()
    rows = []
    results = {}
    for on in (False, True, False, True):  # interleaved: the machine's noise hits both alike
        singles, batches = asyncio.run(_round(on, settings))
        results.setdefault(on, ([], []))
        results[on][0].extend(singles)
        results[on][1].extend(batches)
    for on in (False, True):
        singles, batches = results[on]
        rows.append(
            (
                "on" if on else "off",
                percentile(singles, 50) * 1e3,
                percentile(singles, 99) * 1e3,
                percentile(batches, 50) * 1e3,
            )
        )
    added = rows[1][1] - rows[0][1]
    return (
        "## Rate limiter cost\n\n"
        + table(["limits", "1-fix request p50 ms", "1-fix p99 ms", "5,000-fix batch p50 ms"], rows)
        + f"\n\nThe limiter adds {added:.2f} ms to the median one-fix request"
        f" ({SINGLE_REQUESTS * 2} requests per setting, one at a time;"
        f" {BATCHES * 2} batches of {BATCH_SIZE:,})."
    )
