"""Live location store: ingest rate (batch endpoint, websockets, raw Redis pipeline), query latency
against Redis GEOSEARCH, and Redis memory per live responder.

Runs on the test Redis under a private key prefix (deleted afterwards) and, for the endpoints, a
real uvicorn worker of the app. The in-process side uses what the app uses: its Redis client
(`core.redis.connect_redis`) and uvloop, uvicorn's event loop; the harness's own bookkeeping of a
million people is frozen out of the garbage collector before timing, as the app freezes its
start-up heap. Responders' duty profiles are written straight into the store (the
registry is not what is measured); every one holds a valid certificate so both sides of each
comparison answer the same question.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import random
import secrets
import time
import uuid
from datetime import UTC, datetime

import httpx
import uvloop
import websockets
from redis.asyncio import Redis

from benchmarks.common import app_env, median, percentile, table
from core.auth import Role, issue_token
from core.config import Settings
from core.db import Database
from core.redis import Keys, ReadConnection, connect_redis
from geo.cells import remember_centres_within
from geo.distance import haversine_m
from responders.availability import CertificatePeriod
from responders.store import LiveLocationStore, PositionFix
from tests.support.server import ServerProcess

BOX = (22.45, 113.75, 22.85, 114.60)  # Shenzhen: min_lat, min_lng, max_lat, max_lng
BATCH = 5000
QUERIES = 1000  # p99 from the 10th slowest: 300 left it to 3 queries on a noisy machine
QUERY_ROUNDS = {100_000: 3, 1_000_000: 1}  # the goal's rows get three rounds; 1,000,000 has no goal
RADII = (500.0, 1000.0, 2000.0)
SOCKETS, FRAMES = 100, 50
ROUNDS, IN_FLIGHT = 5, (1, 2, 4)
GOAL_INGEST, GOAL_QUERY_MS = 50_000, 2.0
PAGES, KEY_PER_CELL = "pages of 7 cells", "a key per cell"


def _points(n: int, rng: random.Random) -> list[tuple[str, float, float]]:
    return [
        (str(uuid.UUID(int=rng.getrandbits(128))), rng.uniform(BOX[0], BOX[2]), rng.uniform(BOX[1], BOX[3]))
        for _ in range(n)
    ]


async def _populate(store: LiveLocationStore, people: list[tuple[str, float, float]], ts: float) -> None:
    now = int(time.time())
    cert = [CertificatePeriod("cpr", now - 86_400, now + 86_400 * 365)]
    await store.set_profiles([(rid, "walk", cert) for rid, _, _ in people])
    for i in range(0, len(people), BATCH):
        await store.ingest([PositionFix(rid, lat, lng, ts) for rid, lat, lng in people[i : i + BATCH]])


async def _drop(redis: Redis, keys: Keys) -> None:
    async for key in redis.scan_iter(match=keys("*"), count=5000):
        await redis.unlink(key)


async def _memory(redis: Redis) -> int:
    return int((await redis.info("memory"))["used_memory"])


async def _store_round(
    redis: Redis, store: LiveLocationStore, fixes: list[PositionFix]
) -> tuple[float, float]:
    """Fixes/s through `LiveLocationStore.ingest` in batches, and Redis's own µs per fix (its
    command statistics: the scripts' time, whatever the client's)."""
    await redis.config_resetstat()
    t0 = time.perf_counter()
    for i in range(0, len(fixes), BATCH):
        await store.ingest(fixes[i : i + BATCH])
    elapsed = time.perf_counter() - t0
    stats = await redis.info("commandstats")
    script_us = sum(v["usec"] for k, v in stats.items() if k in ("cmdstat_evalsha", "cmdstat_eval"))
    return len(fixes) / elapsed, script_us / len(fixes)


async def _layout_costs(
    redis: Redis,
    stores: dict[str, LiveLocationStore],
    people: list[tuple[str, float, float]],
    rng: random.Random,
) -> list[list[object]]:
    """What each layout costs a fix: everyone sent to a random point of the city (every fix changes
    page: the worst case), back home (again), then home once more (the same page: what a phone
    walking or standing sends). Ends where it began, so the queries' data is unchanged."""
    away = [(rid, rng.uniform(BOX[0], BOX[2]), rng.uniform(BOX[1], BOX[3])) for rid, _, _ in people]
    rows: list[list[object]] = []
    for layout, store in stores.items():
        moved = []
        for trip in (away, people):
            ts = time.time()
            moved.append(await _store_round(redis, store, [PositionFix(r, a, b, ts) for r, a, b in trip]))
        ts = time.time()
        same = await _store_round(redis, store, [PositionFix(r, a, b, ts) for r, a, b in people])
        rate, redis_us = (median(list(column)) for column in zip(*moved, strict=True))
        rows.append([layout, "everyone to another page", rate, redis_us])
        rows.append([layout, "everyone again in the same page", *same])
    return rows


async def _endpoint_round(
    http: httpx.AsyncClient, people: list[tuple[str, float, float]], in_flight: int
) -> float:
    """Updates/s through `POST /v1/locations`, everyone once, with `in_flight` batches open at a time
    (a gateway forwarding a city's phones keeps a few requests open, as HTTP clients do)."""
    ts = datetime.now(UTC).isoformat()
    bodies = iter(
        [
            json.dumps(
                {
                    "updates": [
                        {"responder_id": rid, "lat": lat, "lng": lng, "ts": ts}
                        for rid, lat, lng in people[i : i + BATCH]
                    ]
                }
            )
            for i in range(0, len(people), BATCH)
        ]
    )

    async def poster() -> None:
        for body in bodies:
            r = await http.post("/v1/locations", content=body, headers={"content-type": "application/json"})
            assert r.status_code == 200 and r.json()["stored"] == BATCH, r.text[:300]

    t0 = time.perf_counter()
    await asyncio.gather(*(poster() for _ in range(in_flight)))
    return len(people) / (time.perf_counter() - t0)


async def _pipeline_round(redis: Redis, key: str, people: list[tuple[str, float, float]]) -> float:
    """Updates/s of a raw redis-py pipeline of GEOADDs, in batches of the same size."""
    t0 = time.perf_counter()
    for i in range(0, len(people), BATCH):
        async with redis.pipeline(transaction=False) as pipe:
            for rid, lat, lng in people[i : i + BATCH]:
                pipe.geoadd(key, (lng, lat, rid))
            await pipe.execute()
    return len(people) / (time.perf_counter() - t0)


async def _ingest_rates(
    server: ServerProcess, token: str, redis: Redis, geo_key: str, people: list[tuple[str, float, float]]
) -> dict[str, list[float]]:
    """`ROUNDS` rounds of every path taken in turn, so a noisy minute on the shared machine falls on
    all of them alike; keyed "pipeline" and by requests in flight."""
    rates: dict[str, list[float]] = {"pipeline": [], **{str(n): [] for n in IN_FLIGHT}}
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=server.url, timeout=60, headers=headers) as http:
        for _ in range(ROUNDS):
            rates["pipeline"].append(await _pipeline_round(redis, geo_key, people))
            for n in IN_FLIGHT:
                rates[str(n)].append(await _endpoint_round(http, people, n))
    return rates


async def _socket_rate(
    server: ServerProcess, db: Database, store: LiveLocationStore, rng: random.Random
) -> float:
    people = _points(SOCKETS, rng)
    now = int(time.time())
    await store.set_profiles(
        [(rid, "walk", [CertificatePeriod("cpr", now - 86_400, now + 86_400)]) for rid, _, _ in people]
    )
    async with db.sessions() as session:
        tokens = [
            (await issue_token(session, Role.responder, "bench", uuid.UUID(rid)))[1] for rid, _, _ in people
        ]
        await session.commit()
    sockets = [
        await websockets.connect(f"{server.ws_url}/v1/ws/responder?token={t}", ping_interval=None)
        for t in tokens
    ]
    base = time.time() - 30

    async def stream(ws: websockets.ClientConnection, lat: float, lng: float) -> None:
        for k in range(FRAMES):
            await ws.send(
                json.dumps(
                    {
                        "type": "location",
                        "lat": lat,
                        "lng": lng + k * 1e-6,
                        "ts": datetime.fromtimestamp(base + k * 0.5, UTC).isoformat(),
                    }
                )
            )
        await ws.send("{}")  # answered with an error frame only after every location before it
        await ws.recv()

    t0 = time.perf_counter()
    await asyncio.gather(*(stream(ws, lat, lng) for ws, (_, lat, lng) in zip(sockets, people, strict=True)))
    elapsed = time.perf_counter() - t0
    for ws in sockets:
        await ws.close()
    for rid, _, _ in people:  # the query rows compare against a GEO key that never held these
        await store.remove(rid)
    return SOCKETS * FRAMES / elapsed


async def _queries(
    store: LiveLocationStore,
    geo_reader: ReadConnection,
    geo_key: str,
    rng: random.Random,
    radius: float,
    where: dict[str, tuple[float, float]],
) -> tuple[list[float], list[float], int, float]:
    """Latencies of ours and GEOSEARCH, how many queries disagree, and how many people a query found.

    GEOSEARCH goes over a connection of its own too (`core.redis.ReadConnection`, as the store's
    reads do), and its timing includes turning the reply into ids and distances, as ours includes
    building its answer: the same path for both, so the comparison is of the queries."""
    ours, geo, differ, found = [], [], 0, 0
    for _ in range(QUERIES):
        lat, lng = rng.uniform(BOX[0] + 0.02, BOX[2] - 0.02), rng.uniform(BOX[1] + 0.02, BOX[3] - 0.02)
        t0 = time.perf_counter()
        got = await store.nearby(lat, lng, radius)
        t1 = time.perf_counter()
        reply = await geo_reader.execute(
            "GEOSEARCH", geo_key, "FROMLONLAT", lng, lat, "BYRADIUS", radius, "m", "WITHDIST", "ASC"
        )
        alt = [(member.decode(), float(distance)) for member, distance in reply]
        t2 = time.perf_counter()
        ours.append(t1 - t0)
        geo.append(t2 - t1)
        found += len(got)
        # Redis measures on its own Earth radius and keeps positions on a 52-bit geohash: only
        # people within a metre of the edge (by our exact distance) may fall either way
        unexplained = {r.responder_id for r in got} ^ {m for m, _ in alt}
        differ += any(abs(haversine_m(lat, lng, *where[rid]) - radius) > 1 for rid in unexplained)
    return ours, geo, differ, found / QUERIES


async def _query_rows(
    size: int,
    layouts: list[tuple[str, LiveLocationStore]],
    geo_reader: ReadConnection,
    geo_key: str,
    rng: random.Random,
    where: dict[str, tuple[float, float]],
) -> tuple[list[list[object]], list[tuple[str, float, float, float]]]:
    """The query table's rows for one population, and (layout, radius, ours p99, GEOSEARCH p99).

    Whole rounds are taken in turn (every radius and layout, then again), so a noisy minute on the
    shared machine spoils one round's p99 rather than one row's; a row's p99 is the median of its
    rounds' p99s, its worst round shown beside it, and its p50 is over every query."""
    results: dict[tuple[float, str], list[tuple[list[float], list[float], int, float]]] = {}
    for _ in range(QUERY_ROUNDS[size]):
        for radius in RADII:
            for layout, queried in layouts:
                result = await _queries(queried, geo_reader, geo_key, rng, radius, where)
                results.setdefault((radius, layout), []).append(result)
    rows: list[list[object]] = []
    p99s: list[tuple[str, float, float, float]] = []
    for (radius, layout), rounds in results.items():
        ours = [t for r in rounds for t in r[0]]
        geo = [t for r in rounds for t in r[1]]
        ours_p99s = [percentile(r[0], 99) * 1e3 for r in rounds]
        geo_p99 = median([percentile(r[1], 99) * 1e3 for r in rounds])
        p99s.append((layout, radius, median(ours_p99s), geo_p99))
        rows.append(
            [
                f"{size:,}",
                layout,
                f"{radius:.0f}",
                median(ours) * 1e3,
                median(ours_p99s),
                max(ours_p99s),
                median(geo) * 1e3,
                geo_p99,
                f"{median(ours) / median(geo):.2f}",
                f"{median([r[3] for r in rounds]):.0f}",
                sum(r[2] for r in rounds),
            ]
        )
    return rows, p99s


async def _run() -> str:
    # a long staleness limit: populating a million takes minutes, and no position may age out mid-run
    settings = Settings().model_copy(update={"staleness_s": 3600.0})
    prefix = "bench" + secrets.token_hex(3)
    keys, cell_keys = Keys(prefix), Keys(prefix + "c")
    redis = connect_redis(settings.redis_url)
    store = LiveLocationStore(redis, keys, settings)  # the default layout: pages of 7 cells
    per_cell = LiveLocationStore(redis, cell_keys, settings.model_copy(update={"live_page_levels": 0}))
    geo_reader = ReadConnection(redis)
    db = Database(settings.database_url, pool_size=2)
    admin_token = "bench-" + secrets.token_hex(8)
    env = app_env(
        settings.database_url,
        settings.redis_url,
        prefix,
        DISPATCH_ADMIN_TOKEN=admin_token,
        DISPATCH_STALENESS_S="3600",
    )
    server = ServerProcess(env=env).start()
    rng = random.Random(11)
    rows, query_rows = [], []
    p99s: list[tuple[str, float, float, float]] = []  # layout, radius, ours, GEOSEARCH at 100,000 live
    try:
        people = _points(100_000, rng)
        before = await _memory(redis)
        await _populate(store, people, time.time())
        per_responder = (await _memory(redis) - before) / len(people)
        geo_key = keys("bench", "geo")
        before = await _memory(redis)
        await _pipeline_round(redis, geo_key, people)
        geo_bytes = (await _memory(redis) - before) / len(people)
        before = await _memory(redis)
        await _populate(per_cell, people, time.time())
        per_cell_bytes = (await _memory(redis) - before) / len(people)
        layout_rows = await _layout_costs(redis, {PAGES: store, KEY_PER_CELL: per_cell}, people, rng)
        rates = await _ingest_rates(server, admin_token, redis, geo_key, people)
        pipeline = median(rates["pipeline"])
        try:
            ws_rate = await _socket_rate(server, db, store, rng)
        except websockets.ConnectionClosed as exc:  # reported, not hidden: see the issue notes
            ws_rate = float("nan")
            print(f"websocket ingest run failed: {exc!r}")
        rows += [
            [
                f"POST /v1/locations, batches of 5,000 (1 worker), {_in_flight(n)}",
                median(rates[str(n)]),
                f"{median(rates[str(n)]) / pipeline:.2f}",
            ]
            for n in IN_FLIGHT
        ]
        rows += [
            [f"WS location frames ({SOCKETS} sockets x {FRAMES})", ws_rate, f"{ws_rate / pipeline:.2f}"],
            ["raw redis-py pipeline of GEOADD (no checks)", pipeline, "1.00"],
        ]
        where = {rid: (round(lat, 6), round(lng, 6)) for rid, lat, lng in people}  # as the store keeps them
        for warm in (store, per_cell):  # as the app does for its city at start-up
            remember_centres_within(*BOX, warm.page_resolution)
        gc.collect()
        gc.freeze()  # the harness's million tuples are not the service's heap: keep full collections off them
        for size in (100_000, 1_000_000):
            if size > len(people):
                extra = _points(size - len(people), rng)
                where.update({rid: (round(lat, 6), round(lng, 6)) for rid, lat, lng in extra})
                await _populate(store, extra, time.time())
                for i in range(0, len(extra), BATCH):
                    async with redis.pipeline(transaction=False) as pipe:
                        for rid, lat, lng in extra[i : i + BATCH]:
                            pipe.geoadd(geo_key, (lng, lat, rid))
                        await pipe.execute()
                gc.collect()
                gc.freeze()
            layouts = [(PAGES, store)] + ([(KEY_PER_CELL, per_cell)] if size == 100_000 else [])
            rows_here, p99s_here = await _query_rows(size, layouts, geo_reader, geo_key, rng, where)
            query_rows += rows_here
            p99s += p99s_here if size == 100_000 else []
            await _drop(redis, cell_keys)  # the comparison is at 100,000 only
    finally:
        server.stop()
        await _drop(redis, keys)
        await _drop(redis, cell_keys)
        await store.aclose()
        await per_cell.aclose()
        await geo_reader.aclose()
        await redis.aclose()
        await db.dispose()
    return "\n".join(
        [
            "## Responders: live location ingest, nearby query, memory",
            "",
            "100,000 on-duty responders spread over Shenzhen's bounding box (about 3,000 km²)."
            f" Ingest rates are updates per second, median of {ROUNDS} rounds taken in turn (the"
            " pipeline, then the endpoint with 1, 2 and 4 requests in flight, and again); the endpoint"
            " and the websocket path include parsing, validation, datum handling, the duty/certificate check,"
            " out-of-order protection and the atomic cell move, which the raw GEOADD pipeline skips.",
            "",
            table(["path", "updates/s", "vs raw pipeline"], rows),
            "",
            _ingest_goal({n: median(rates[str(n)]) for n in IN_FLIGHT}),
            "",
            "The endpoint rounds resend each responder's position (a new time, the same page), as phones"
            " standing or walking do. What a fix costs by layout of the cell index, through"
            " `LiveLocationStore.ingest` in-process (batches of 5,000), with Redis's own time per fix"
            " from its command statistics; 'another page' sends everyone across the city (each fix"
            " cuts a record out of one page and appends it to another: the worst case, and the one"
            " where a page's size shows):",
            "",
            table(["layout", "fixes", "fixes/s", "Redis µs per fix"], layout_rows),
            "",
            f"Nearby query ({QUERIES:,} random points per row and round; at 100,000 three rounds taken"
            " in turn, the p99 the median of the rounds' p99s): `LiveLocationStore.nearby` (H3 cover,"
            " one MGET of the covering pages' records, exact haversine, staleness and certificate"
            " filter in numpy, the answer as columns) against `GEOSEARCH … BYRADIUS WITHDIST ASC` on"
            f" the same positions. Layouts of the res-9 cell index: '{PAGES}' (the default: one Redis"
            " key per res-8 parent, holding its 7 cells) and, at 100,000, the same people in a second"
            f" store with '{KEY_PER_CELL}' (`DISPATCH_LIVE_PAGE_LEVELS=0`); each row times its own"
            " GEOSEARCH on the same points, interleaved query by query. Each side reads over a Redis"
            " connection of its own (`core.redis.ReadConnection`, redis-py with hiredis) on uvloop, and"
            " its time includes turning the reply into ids and distances."
            " The city's H3 cell centres are worked out before timing, as the app does for its"
            " districts at start-up. 'found' is how many people a query returns; 'differ' counts"
            " queries whose answers disagree about someone farther than a metre from the edge of the"
            " radius (a bug if ever non-zero).",
            "",
            table(
                [
                    "live",
                    "layout",
                    "radius m",
                    "ours p50 ms",
                    "ours p99 ms",
                    "ours p99, worst round",
                    "GEOSEARCH p50 ms",
                    "GEOSEARCH p99 ms",
                    "ours/GEOSEARCH p50",
                    "found (mean)",
                    "differ",
                ],
                query_rows,
            ),
            "",
            _query_goal(p99s),
            "",
            "Redis memory per live responder (duty profile + position in the cell index):"
            f" **{per_responder:.0f} bytes** with {PAGES} (goal < 300), {per_cell_bytes:.0f} bytes"
            f" with {KEY_PER_CELL}; a bare GEOADD member costs {geo_bytes:.0f} bytes but holds no time,"
            " mode, accuracy or certificates.",
        ]
    )


def _in_flight(n: int) -> str:
    return "one request at a time" if n == 1 else f"{n} requests in flight"


def _ingest_goal(rates: dict[int, float]) -> str:
    verdicts = [
        f"{_in_flight(n)}: {rate:,.0f}/s ({'met' if rate >= GOAL_INGEST else '**not met**'})"
        for n, rate in rates.items()
    ]
    return (
        f"Goal at least {GOAL_INGEST:,} updates/s through the batch endpoint on one worker, by how"
        f" many requests the gateway keeps open: {'; '.join(verdicts)}. The load generator, the app"
        " and Redis share the 2 cores. A batch is validated by pydantic, packed as columns with numpy"
        " and stored by one script call per 1,000 fixes, sent as soon as each is packed so the app"
        " and Redis work at the same time; with one request at a time each batch's validation"
        " waits for nothing but also overlaps nothing."
    )


def _query_goal(p99s: list[tuple[str, float, float, float]]) -> str:
    def verdicts(layout: str) -> str:
        return "; ".join(
            f"{r:.0f} m: {ours:.2f} ms ({'met' if ours < GOAL_QUERY_MS else 'not met'};"
            f" GEOSEARCH {geo:.2f} ms)"
            for name, r, ours, geo in p99s
            if name == layout
        )

    slow_native = sorted({f"{r:.0f} m" for _, r, _, geo in p99s if geo >= GOAL_QUERY_MS})
    native = f" Redis's own GEOSEARCH missed it in this run at {', '.join(slow_native)}." * bool(slow_native)
    return (
        f"Goal p99 under {GOAL_QUERY_MS:g} ms at 100,000 live, by radius, with {PAGES} (the default):"
        f" {verdicts(PAGES)}. For comparison, {KEY_PER_CELL}: {verdicts(KEY_PER_CELL)}.{native}"
    )


def run() -> str:
    if not os.environ.get("DATABASE_URL"):
        raise SystemExit("DATABASE_URL not set: run through `make bench`, which starts the stores")
    return uvloop.run(_run())
