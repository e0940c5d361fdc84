"""The live store on one Redis and on a 3-primary Redis Cluster, side by side in one run.

Both sides run on the same 2 cores, so the cluster cannot show what more machines would give; what
it can show is the price of the region tags and the fan-out (ingest fixes/s, nearby p50/p99, the
ratios cluster/single), where the Redis time goes (each node's command statistics before and after,
per fix and per query, and each shard's share of it), the memory and slot balance of a province's
two million responders, and, worked out without Redis, the fan-out per query by radius and the
share of fixes that move a responder to another region.

The single Redis is the test one (`REDIS_URL`), the cluster the test cluster (`REDIS_CLUSTER_URL`,
three primaries, no replicas, started by `make bench` as by `make test`); each side writes under a
private key prefix, deleted afterwards. Duty profiles are written straight into the store.
"""

from __future__ import annotations

import gc
import os
import secrets
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import uvloop
from redis.asyncio import Redis, RedisCluster

from benchmarks import province
from benchmarks.cluster_shape import crossings, fan_out, region_slots
from benchmarks.common import median, percentile, table
from core.config import Settings
from core.redis import Keys, RedisClient, connect_redis
from geo.cells import cells_of, parents_of, remember_centres_within
from geo.reach import ReachModel
from responders.availability import CertificatePeriod
from responders.records import RECORD_DTYPE, padded_id
from responders.store import INGEST_CHUNK, FixColumns, LiveLocationStore

CITY = (22.45, 113.75, 22.85, 114.60)  # Shenzhen, as bench_responders: min_lat, min_lng, max_lat, max_lng
LIVE = 100_000
PROVINCE = 2_000_000
BATCH = 5000  # a gateway's batch
ROUNDS = 3
QUERIES = 1000
RADII = (500.0, 2000.0)
STEP_M = 50.0  # an e-bike's fix every 10 s: most fixes stay in their page, some change it
SPEEDS = {"walking (1.4 m/s)": 1.4, "e-bike (5 m/s)": 5.0}
FIX_INTERVAL_S = 10.0
GOAL_P99_MS, GOAL_P99_RATIO, GOAL_INGEST_RATIO = 2.0, 1.5, 0.7
POOL = 4096
"""Connections per node. A cluster client's pool refuses a command past its size (redis-py's
`MaxConnectionsError`) where the single server's waits; with the app's 64, populating the province
(first fixes: every chunk moves its people in, chunks in parallel) still ran out; the app now opens
up to `core.redis.CLUSTER_CONNECTIONS_PER_NODE` (512) per node."""


@dataclass
class Side:
    """One deployment under test: its client, its store, and a plain client per primary (whose
    INFO tells what that node did)."""

    name: str
    redis: RedisClient
    store: LiveLocationStore
    nodes: list[Redis]
    keys: Keys

    async def aclose(self) -> None:
        await self.store.aclose()
        for node in self.nodes:
            await node.aclose()
        await self.redis.aclose()


async def open_side(name: str, url: str, settings: Settings) -> Side:
    keys = Keys("bench" + secrets.token_hex(3))
    redis = connect_redis(url, POOL)
    if isinstance(redis, RedisCluster):
        await redis.initialize()
        nodes = [Redis(host=n.host, port=n.port) for n in redis.get_primaries()]
    else:
        nodes = [Redis.from_url(url)]
    nodes.sort(key=lambda n: int(n.connection_pool.connection_kwargs["port"]))
    return Side(name, redis, LiveLocationStore(redis, keys, settings), nodes, keys)


def node_name(node: Redis) -> str:
    return f":{node.connection_pool.connection_kwargs['port']}"


async def command_totals(side: Side) -> tuple[np.ndarray, np.ndarray]:
    """Microseconds each primary has spent in commands (a script's own commands count in its
    time), and how many scripts it ran, since its start."""
    usec, calls = [], []
    for node in side.nodes:
        stats = await node.info("commandstats")
        usec.append(sum(v["usec"] for k, v in stats.items() if k.startswith("cmdstat_")))
        calls.append(sum(stats.get(k, {}).get("calls", 0) for k in ("cmdstat_evalsha", "cmdstat_eval")))
    return np.array(usec, dtype=np.float64), np.array(calls, dtype=np.float64)


async def redis_usec(side: Side) -> np.ndarray:
    """Microseconds each primary has spent in commands since its start."""
    return (await command_totals(side))[0]


async def drop(side: Side) -> None:
    """Delete the side's keys, node by node: one UNLINK per key (a cluster refuses one naming keys
    of several slots), pipelined."""
    for node in side.nodes:
        async with node.pipeline(transaction=False) as pipe:
            async for key in node.scan_iter(match=side.keys("*"), count=5000):
                pipe.unlink(key)
                if len(pipe) >= 5000:
                    await pipe.execute()
            await pipe.execute()


@dataclass
class Population:
    """Responders and their current positions; `ids` as the records carry them."""

    names: list[str]
    ids: np.ndarray
    lat: np.ndarray
    lng: np.ndarray

    @classmethod
    def of(cls, lat: np.ndarray, lng: np.ndarray, seed: int) -> Population:
        rng = np.random.default_rng(seed)
        names = [str(uuid.UUID(bytes=rng.bytes(16), version=4)) for _ in range(len(lat))]
        ids = np.array([padded_id(n) for n in names], dtype=RECORD_DTYPE["id"])
        return cls(names, ids, lat, lng)

    def batches(self, ts: float) -> Iterator[list[FixColumns]]:
        """Everyone's fix at `ts`, as gateway batches of `BATCH` in chunks of `INGEST_CHUNK`."""
        n = len(self.names)
        for start in range(0, n, BATCH):
            rows = slice(start, min(n, start + BATCH))
            batch = FixColumns.build(
                self.ids[rows],
                self.lat[rows],
                self.lng[rows],
                np.full(rows.stop - rows.start, ts),
                [5.0] * (rows.stop - rows.start),
                [None] * (rows.stop - rows.start),
            )
            yield [batch.part(slice(i, i + INGEST_CHUNK)) for i in range(0, len(batch), INGEST_CHUNK)]


async def populate(side: Side, people: Population) -> None:
    """Everyone on duty with a valid CPR certificate, then their first fix."""
    now = int(time.time())
    cert = [CertificatePeriod("cpr", now - 86_400, now + 86_400 * 365)]
    for start in range(0, len(people.names), 50_000):
        await side.store.set_profiles([(rid, "walk", cert) for rid in people.names[start : start + 50_000]])
    await ingest(side, people, time.time())


async def ingest(side: Side, people: Population, ts: float) -> float:
    """Seconds to store everyone's fix, batch after batch as a gateway sends them."""
    batches = list(people.batches(ts))
    t0 = time.perf_counter()
    for chunks in batches:
        outcomes = await side.store.ingest_chunks(chunks)
        assert all(o == "stored" for o in outcomes), f"{side.name}: {set(outcomes)}"
    return time.perf_counter() - t0


@dataclass
class Timings:
    """What one side did in the rounds: ingest seconds per round, query latencies per radius and
    round, and Redis microseconds per primary spent on the ingest and on the queries."""

    ingest_s: list[float]
    query_s: dict[float, list[list[float]]]
    ingest_usec: np.ndarray
    query_usec: np.ndarray


async def side_by_side(sides: list[Side], people: Population, rng: np.random.Generator) -> dict[str, Timings]:
    """`ROUNDS` rounds taken in turn: each side stores everyone's next fix (`STEP_M` on), then
    both answer the same queries, interleaved query by query, the order alternating."""
    timings = {
        s.name: Timings([], {r: [] for r in RADII}, np.zeros(len(s.nodes)), np.zeros(len(s.nodes)))
        for s in sides
    }
    for _ in range(ROUNDS):
        people.lat, people.lng = province.moved(people.lat, people.lng, STEP_M, rng)
        ts = time.time()
        for side in sides:
            before = await redis_usec(side)
            timings[side.name].ingest_s.append(await ingest(side, people, ts))
            timings[side.name].ingest_usec += await redis_usec(side) - before
        gc.collect()
        before_q = {s.name: await redis_usec(s) for s in sides}
        for radius in RADII:
            lats = rng.uniform(CITY[0] + 0.02, CITY[2] - 0.02, QUERIES)
            lngs = rng.uniform(CITY[1] + 0.02, CITY[3] - 0.02, QUERIES)
            rounds = {s.name: [] for s in sides}
            found: dict[str, list[set[str]]] = {s.name: [] for s in sides}
            for k, (lat, lng) in enumerate(zip(lats.tolist(), lngs.tolist(), strict=True)):
                for side in sides if k % 2 == 0 else sides[::-1]:
                    t0 = time.perf_counter()
                    got = await side.store.nearby(lat, lng, radius)
                    rounds[side.name].append(time.perf_counter() - t0)
                    found[side.name].append(set(got.responder_id))
            answers = list(found.values())
            assert all(a == answers[0] for a in answers), "the sides answered differently"
            for side in sides:
                timings[side.name].query_s[radius].append(rounds[side.name])
        for side in sides:
            timings[side.name].query_usec += await redis_usec(side) - before_q[side.name]
    return timings


@dataclass(frozen=True)
class Footprint:
    """A side after storing the province: per primary, bytes and keys added and responders held."""

    nodes: list[str]
    bytes_added: list[int]
    keys_added: list[int]
    responders: list[int]
    biggest_slot_share: float
    ingest_s: float  # everyone's next fix, in province-wide gateway batches
    ingest_usec: np.ndarray  # by primary
    ingest_calls: np.ndarray  # script calls, by primary


async def _memory(side: Side) -> tuple[list[int], list[int]]:
    """Each primary's memory and key count. Memory without the clients' buffers: the cluster
    client opens a connection per call in flight, whose buffers are not the data's."""
    used = []
    for node in side.nodes:
        info = await node.info("memory")
        used.append(int(info["used_memory"]) - int(info["mem_clients_normal"]))
    keys = [int(await n.dbsize()) for n in side.nodes]
    return used, keys


async def shard_ranges(side: Side) -> list[tuple[int, int, int]]:
    """(first slot, last slot, index of the primary in `side.nodes`) for each slot range."""
    if not isinstance(side.redis, RedisCluster):
        return [(0, 16_383, 0)]
    ports = [int(n.connection_pool.connection_kwargs["port"]) for n in side.nodes]
    reply = await side.nodes[0].execute_command("CLUSTER SLOTS")
    return [(int(a), int(b), ports.index(int(owner[1]))) for a, b, owner, *_ in reply]


async def footprint(side: Side, people: Population, settings: Settings) -> Footprint:
    used0, keys0 = await _memory(side)
    await populate(side, people)
    used1, keys1 = await _memory(side)
    usec0, calls0 = await command_totals(side)
    people.lat, people.lng = province.moved(people.lat, people.lng, STEP_M, np.random.default_rng(7))
    ingest_s = await ingest(side, people, time.time())
    usec1, calls1 = await command_totals(side)
    cells = cells_of(np.round(people.lat, 6), np.round(people.lng, 6), settings.h3_resolution)
    regions = parents_of(cells, settings.live_region_resolution)  # a page's region is its cell's
    regions, per_region = np.unique(regions, return_counts=True)
    slots = region_slots(regions)
    held = [0] * len(side.nodes)
    for first, last, owner in await shard_ranges(side):
        held[owner] += int(per_region[(slots >= first) & (slots <= last)].sum())
    by_slot = np.bincount(slots, weights=per_region, minlength=16_384)
    return Footprint(
        [node_name(n) for n in side.nodes],
        [b - a for a, b in zip(used0, used1, strict=True)],
        [b - a for a, b in zip(keys0, keys1, strict=True)],
        held,
        float(by_slot.max() / len(people.names)),
        ingest_s,
        usec1 - usec0,
        calls1 - calls0,
    )


def _shares(usec: np.ndarray) -> str:
    return " / ".join(f"{100 * u / max(1.0, usec.sum()):.0f}%" for u in usec)


def ingest_table(sides: list[Side], timings: dict[str, Timings]) -> tuple[str, dict[str, float]]:
    rows, rates = [], {}
    for side in sides:
        t = timings[side.name]
        rate = LIVE / median(t.ingest_s)
        rates[side.name] = rate
        per_fix = t.ingest_usec / (LIVE * ROUNDS)
        rows.append(
            [
                side.name,
                rate,
                f"{rate / rates[sides[0].name]:.2f}",
                f"{per_fix.sum():.1f}",
                " / ".join(f"{u:.1f}" for u in per_fix),
                _shares(t.ingest_usec),
            ]
        )
    headers = ["Redis", "fixes/s", "vs single", "Redis µs per fix", "µs per fix by shard", "shard shares"]
    return table(headers, rows), rates


def query_table(sides: list[Side], timings: dict[str, Timings]) -> tuple[str, dict[tuple[str, float], float]]:
    rows, p99s = [], {}
    for radius in RADII:
        single_p50 = median([x for r in timings[sides[0].name].query_s[radius] for x in r]) * 1e3
        for side in sides:
            rounds = timings[side.name].query_s[radius]
            p99 = median([percentile(r, 99) * 1e3 for r in rounds])
            p50 = median([x for r in rounds for x in r]) * 1e3
            p99s[(side.name, radius)] = p99
            rows.append(
                [
                    f"{radius:.0f}",
                    side.name,
                    p50,
                    p99,
                    max(percentile(r, 99) * 1e3 for r in rounds),
                    f"{p50 / single_p50:.2f}",
                    f"{p99 / p99s[(sides[0].name, radius)]:.2f}",
                ]
            )
    headers = ["radius m", "Redis", "p50 ms", "p99 ms", "p99, worst round", "p50 vs single", "p99 vs single"]
    return table(headers, rows), p99s


def query_usec_table(sides: list[Side], timings: dict[str, Timings]) -> str:
    queries = QUERIES * len(RADII) * ROUNDS
    rows = [
        [
            side.name,
            f"{timings[side.name].query_usec.sum() / queries:.0f}",
            " / ".join(f"{u / queries:.0f}" for u in timings[side.name].query_usec),
            _shares(timings[side.name].query_usec),
        ]
        for side in sides
    ]
    return table(["Redis", "Redis µs per query", "by shard", "shard shares"], rows)


def footprint_table(prints: dict[str, Footprint], n: int) -> str:
    rows = []
    for name, f in prints.items():
        for k, node in enumerate(f.nodes):
            rows.append(
                [
                    name,
                    node,
                    f"{f.bytes_added[k] / 2**20:.0f}",
                    f"{f.keys_added[k]:,}",
                    f"{100 * f.responders[k] / n:.1f}%",
                    f"{f.bytes_added[k] / max(1, f.responders[k]):.0f}",
                ]
            )
        rows.append([name, "all", f"{sum(f.bytes_added) / 2**20:.0f}", f"{sum(f.keys_added):,}", "100%",
                     f"{sum(f.bytes_added) / n:.0f}"])  # fmt: skip
    return table(["Redis", "node", "MiB added", "keys added", "responders", "bytes per responder"], rows)


def province_ingest_table(prints: dict[str, Footprint], n: int) -> str:
    rates = {name: n / f.ingest_s for name, f in prints.items()}
    rows = [
        [name, rates[name], f"{rates[name] / rates['single']:.2f}", f"{f.ingest_usec.sum() / n:.1f}",
         " / ".join(f"{u / n:.1f}" for u in f.ingest_usec), _shares(f.ingest_usec),
         f"{n / max(1.0, f.ingest_calls.sum()):.0f}"]
        for name, f in prints.items()
    ]  # fmt: skip
    headers = ["Redis", "fixes/s", "vs single", "Redis µs per fix", "by shard", "shard shares"]
    headers.append("fixes per script call")
    return table(headers, rows)


def shape_tables(settings: Settings) -> tuple[str, str]:
    """The fan-out per query by radius, and the share of fixes that change page and region."""
    lat, lng = province.people(200_000, seed=3)
    levels = {
        "resolution": settings.h3_resolution,
        "page_resolution": max(0, settings.h3_resolution - settings.live_page_levels),
        "region_resolution": settings.live_region_resolution,
    }
    escalation = ReachModel.from_settings(settings).max_distance_for(settings.reach_max_s)
    radii = {"500 m": 500.0, "2 km": 2000.0, f"{settings.reach_max_s:.0f} s reach": escalation}
    fans = [(label, fan_out(lat[:2000], lng[:2000], r, **levels)) for label, r in radii.items()]
    fan_rows = [
        [label, f"{f.radius_m:,.0f}", f"{f.pages:.1f}", f"{f.regions:.2f}", f"{f.slots:.2f}",
         f"{f.shards:.2f}", f"{100 * f.several_slots:.0f}%", f.most_slots]
        for label, f in fans
    ]  # fmt: skip
    moves = [(label, crossings(lat, lng, v * FIX_INTERVAL_S, **levels)) for label, v in SPEEDS.items()]
    move_rows = [
        [label, f"{c.step_m:.0f}", f"{c.fixes:,}", f"{100 * c.page_share:.2f}%",
         f"{100 * c.region_share:.3f}%"]
        for label, c in moves
    ]  # fmt: skip
    fan_headers = [
        "query",
        "radius m",
        "pages",
        "regions",
        "slots (MGETs)",
        "shards of 3",
        "> 1 slot",
        "most slots",
    ]
    move_headers = ["speed", "metres per fix", "fixes", "change page", "change region (2-step move)"]
    return table(fan_headers, fan_rows), table(move_headers, move_rows)


async def _run() -> str:
    cluster_url = os.environ.get("REDIS_CLUSTER_URL")
    if not cluster_url:
        raise SystemExit("REDIS_CLUSTER_URL not set: run through `make bench`, which starts the cluster")
    # a long staleness limit: populating the province takes minutes, and no position may age out mid-run
    settings = Settings().model_copy(update={"staleness_s": 3600.0})
    fan_table, move_table = shape_tables(settings)
    remember_centres_within(*CITY, max(0, settings.h3_resolution - settings.live_page_levels))
    sides = [
        await open_side("single", settings.redis_url, settings),
        await open_side("cluster", cluster_url, settings),
    ]
    rng = np.random.default_rng(11)
    try:
        lats, lngs = rng.uniform(CITY[0], CITY[2], LIVE), rng.uniform(CITY[1], CITY[3], LIVE)
        people = Population.of(lats, lngs, seed=1)
        for side in sides:
            await populate(side, people)
        gc.collect()
        gc.freeze()
        timings = await side_by_side(sides, people, rng)
        for side in sides:
            await drop(side)
        gc.unfreeze()
        crowd = Population.of(*province.people(PROVINCE, seed=20), seed=2)
        prints = {}
        for side in sides[::-1]:  # the cluster first: it is the one that must be measured
            prints[side.name] = await footprint(side, crowd, settings)
            await drop(side)
    finally:
        for side in sides:
            await drop(side)
            await side.aclose()
    ingest_md, rates = ingest_table(sides, timings)
    query_md, p99s = query_table(sides, timings)
    return report(settings, ingest_md, rates, query_md, p99s, query_usec_table(sides, timings),
                  footprint_table(prints, PROVINCE), province_ingest_table(prints, PROVINCE), prints,
                  fan_table, move_table)  # fmt: skip


def report(
    settings: Settings,
    ingest_md: str,
    rates: dict[str, float],
    query_md: str,
    p99s: dict[tuple[str, float], float],
    query_usec_md: str,
    footprint_md: str,
    province_md: str,
    prints: dict[str, Footprint],
    fan_md: str,
    move_md: str,
) -> str:
    ingest_ratio = rates["cluster"] / rates["single"]
    p99_verdicts = "; ".join(
        f"{r:.0f} m: {p99s[('cluster', r)]:.2f} ms, {p99s[('cluster', r)] / p99s[('single', r)]:.2f}x single"
        f" ({'met' if p99s[('cluster', r)] <= GOAL_P99_MS and p99s[('cluster', r)] <= GOAL_P99_RATIO * p99s[('single', r)] else '**not met**'})"  # noqa: E501
        for r in RADII
    )
    return "\n".join(
        [
            "## Redis Cluster: the live store on one Redis and on three primaries",
            "",
            f"{LIVE:,} on-duty responders over Shenzhen's box on the single Redis and, in the same run, on a"
            " 3-primary Redis Cluster (no replicas) on the same 2 cores, keys tagged by res-"
            f"{settings.live_region_resolution} region. {ROUNDS} rounds taken in turn: each side stores"
            f" everyone's next fix ({STEP_M:.0f} m on at a random heading, an e-bike's 10 s: most stay"
            " in their page, some change page or region) through `LiveLocationStore.ingest_chunks` in"
            f" gateway batches of {BATCH:,}, then both answer the same {QUERIES:,} random nearby queries"
            " per radius, interleaved query by query (their answers compared: identical in every"
            " query). Redis time is each primary's `INFO commandstats` usec, all commands, after minus"
            " before; shard shares are each primary's part of its side's Redis time.",
            "",
            ingest_md,
            "",
            query_md,
            "",
            "Redis time per nearby query (both radii together):",
            "",
            query_usec_md,
            "",
            f"Goal: ingest on the cluster ≥ {GOAL_INGEST_RATIO}x single: {ingest_ratio:.2f}x"
            f" ({'met' if ingest_ratio >= GOAL_INGEST_RATIO else '**not met**'}); nearby p99 on the cluster"
            f" ≤ {GOAL_P99_MS:g} ms and ≤ {GOAL_P99_RATIO}x single at {LIVE:,} live: {p99_verdicts}. On one"
            " machine the cluster's three primaries share the cores the single Redis had alone: the"
            " comparison shows what the tags and the fan-out cost, not what more machines would give.",
            "",
            f"**Memory and slot balance**: {PROVINCE:,} responders over Guangdong's box"
            f" ({province.BOX[0]}–{province.BOX[2]} N, {province.BOX[1]}–{province.BOX[3]} E), where people"
            f" are: {100 * (1 - province.BACKGROUND):.0f}% around {len(province.CITIES)} city centres in"
            f" proportion to residents (Guangzhou, Shenzhen, Dongguan, Foshan, …), the rest uniform. Profiles"
            " and a first fix each; memory (used_memory less the clients' buffers) and keys added per"
            " primary, and the responders each primary holds (by the slot of their region):",
            "",
            footprint_md,
            "",
            f"The most crowded region (one slot, which no resharding can split) holds"
            f" {100 * prints['cluster'].biggest_slot_share:.1f}% of the province's responders.",
            "",
            f"Then everyone's next fix ({STEP_M:.0f} m on), in gateway batches of {BATCH:,} as they come"
            " from a province: a batch's fixes are spread over hundreds of regions; on the cluster they"
            " queue by slot across the batch's chunks, one script call per slot the batch touches (a"
            f" slot's call goes out early once it holds {INGEST_CHUNK:,}):",
            "",
            province_md,
            "",
            "**Fan-out per query** (pure: the page cover of 2,000 points where the province's people are,"
            f" each page's res-{settings.live_region_resolution} region and the slot of its tag; shards as"
            " `redis-cli --cluster create` splits the slots over 3 primaries). One MGET per slot, a"
            " node's slots sent together on the store's own connection to it, the nodes in parallel:",
            "",
            fan_md,
            "",
            "**Fixes that cross regions** (pure: 200,000 responders where people are, each moving one"
            f" fix interval ({FIX_INTERVAL_S:.0f} s) on a random heading; the page and the region are those"
            " of the stored res-9 cell, as the store computes them). A change of region is the store's"
            " two-step move (insert in the new region, compare-and-set the directory, delete from the old):",
            "",
            move_md,
        ]
    )


def run() -> str:
    if not os.environ.get("DATABASE_URL"):
        raise SystemExit("DATABASE_URL not set: run through `make bench`, which starts the stores")
    return uvloop.run(_run())
