"""The live location store against a real Redis, and again against a real 3-primary Redis Cluster
(`redis_url_each`): exactness, atomic moves, moves between regions, ordering, staleness, duty.
Running on the cluster also proves each script's keys sit in one slot: the server refuses otherwise."""

from __future__ import annotations

import asyncio
import random
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import h3
import numpy as np
import pytest
import pytest_asyncio
from redis.asyncio import RedisCluster
from redis.client import NEVER_DECODE
from redis.exceptions import ResponseError

from benchmarks.province import people as province_people
from core.redis import Keys, RedisClient, connect_redis
from geo.cells import cell_of
from geo.distance import haversine_m_np
from responders.availability import CertificatePeriod
from responders.records import RECORD_DTYPE, decode_ids
from responders.store import INGEST_CHUNK, MOVE_MARK_S, FixColumns, LiveLocationStore, Outcome, PositionFix
from tests.support.live import DAY, SZ, StoreSettings


def valid_now(kind: str = "cpr") -> list[CertificatePeriod]:
    now = int(time.time())
    return [CertificatePeriod(kind, now - 365 * DAY, now + 365 * DAY)]


@pytest_asyncio.fixture
async def live_redis(redis_url_each: str) -> AsyncIterator[RedisClient]:
    """The app's kind of client for the single Redis, then for the cluster."""
    client = connect_redis(redis_url_each)
    yield client
    await client.aclose()


async def _drop_namespace(redis: RedisClient, keys: Keys) -> None:
    async for key in redis.scan_iter(match=keys("*"), count=1000):
        await redis.delete(key)


@pytest_asyncio.fixture(params=[1, 0], ids=["pages", "key-per-cell"])
async def store(live_redis: RedisClient, request: pytest.FixtureRequest) -> AsyncIterator[LiveLocationStore]:
    """Both layouts a deployment may choose (`live_page_levels`): parents of 7 cells, and a key per cell."""
    keys = Keys("rctest-live-" + secrets.token_hex(4))
    store = LiveLocationStore(live_redis, keys, StoreSettings(live_page_levels=request.param))
    yield store
    await store.aclose()
    await _drop_namespace(live_redis, keys)


async def test_nearby_equals_brute_force_on_10000_random_responders(store: LiveLocationStore) -> None:
    rng = random.Random(42)
    now = time.time()
    people: dict[str, tuple[float, float, float]] = {}
    fixes = []
    for i in range(10_000):
        rid = f"r{i:05d}"
        lat, lng = rng.uniform(SZ[0], SZ[1]), rng.uniform(SZ[2], SZ[3])
        # a fifth are stale: stored but must never be returned
        ts = now - (rng.uniform(130, 600) if i % 5 == 0 else rng.uniform(0, 100))
        people[rid] = (lat, lng, ts)
        fixes.append(PositionFix(rid, lat, lng, ts, 5.0, None))
    await store.set_profiles([(rid, "walk", valid_now()) for rid in people])
    for start in range(0, len(fixes), 2000):
        outcomes = await store.ingest(fixes[start : start + 2000])
        assert set(outcomes) == {Outcome.stored}
    ids = np.array(list(people))
    stored_lat = np.array([round(p[0], 6) for p in people.values()])  # the store keeps 6 decimals
    stored_lng = np.array([round(p[1], 6) for p in people.values()])
    ts_all = np.array([p[2] for p in people.values()])
    radii = [50, 300, 800, 1500, 3000, 5000]
    for q in range(300):
        lat, lng = rng.uniform(SZ[0], SZ[1]), rng.uniform(SZ[2], SZ[3])
        radius = radii[q % len(radii)] * rng.uniform(0.8, 1.2)
        got = await store.nearby(lat, lng, radius, at=now)
        d = haversine_m_np(lat, lng, stored_lat, stored_lng)  # brute force over everyone
        keep = (d <= radius) & (now - ts_all <= 120)
        expected = sorted(zip(d[keep].tolist(), ids[keep].tolist(), strict=True))
        assert [r.responder_id for r in got] == [rid for _, rid in expected]
        assert [r.distance_m for r in got] == pytest.approx([d for d, _ in expected], abs=1e-6)


async def test_per_mode_radii_equal_brute_force_on_mixed_modes(store: LiveLocationStore) -> None:
    """Each travel mode gets its own radius; everyone inside theirs comes back, nobody outside it."""
    rng = random.Random(7)
    now = time.time()
    modes = ["walk", "ebike", "car", "bicycle"]
    people = {
        f"m{i:04d}": (rng.uniform(22.50, 22.60), rng.uniform(114.00, 114.10), modes[i % 4])
        for i in range(4000)
    }
    await store.set_profiles([(rid, "walk", valid_now()) for rid in people])
    # the mode on the fix overrides the profile's, as a phone reporting a bicycle does
    await store.ingest(
        [PositionFix(rid, lat, lng, now - 5, None, mode) for rid, (lat, lng, mode) in people.items()]
    )
    ids = np.array(list(people))
    lat_all = np.array([round(p[0], 6) for p in people.values()])
    lng_all = np.array([round(p[1], 6) for p in people.values()])
    mode_all = np.array([p[2] for p in people.values()])
    for _ in range(60):
        lat, lng = rng.uniform(22.51, 22.59), rng.uniform(114.01, 114.09)
        radius = rng.uniform(300, 2500)
        radii = {"walk": radius * rng.uniform(0.05, 0.3), "ebike": radius * rng.uniform(0.4, 0.9), "car": 5e4}
        got = await store.nearby(lat, lng, radius, at=now, mode_radii=radii)
        d = haversine_m_np(lat, lng, lat_all, lng_all)
        limit = np.array([min(radii.get(m, radius), radius) for m in mode_all])
        keep = d <= limit
        expected = sorted(zip(d[keep].tolist(), ids[keep].tolist(), strict=True))
        assert [r.responder_id for r in got] == [rid for _, rid in expected]
        assert [r.mode for r in got] == [people[rid][2] for _, rid in expected]


async def test_moving_updates_the_cell_index_atomically(
    store: LiveLocationStore, live_redis: RedisClient
) -> None:
    await store.set_profile("mover", "ebike", valid_now())
    t = time.time() - 50
    path = [(22.54 + 0.0015 * k, 114.05 + 0.002 * k) for k in range(20)]  # crosses many res-9 cells
    keys = sorted({store.page_key_of(lat, lng) for lat, lng in path})
    assert len(keys) > 5  # the path crosses pages, not only cells within one
    assert len({k.split("{")[1].split("}")[0] for k in keys}) == 1  # in one region: one slot

    async def holds(*keys: str) -> int:
        """How many records of the mover the cells hold, read in ONE command (a consistent snapshot)."""
        blobs = await live_redis.execute_command("MGET", *keys, **{NEVER_DECODE: []})
        records = np.frombuffer(b"".join(b for b in blobs if b), dtype=RECORD_DTYPE)
        return decode_ids(records["id"]).count("mover")

    async def count_cells() -> list[int]:
        return [await holds(*keys) for _ in range(200)]

    async def move() -> None:
        for k, (lat, lng) in enumerate(path):
            assert await store.ingest([PositionFix("mover", lat, lng, t + k)]) == [Outcome.stored]

    await store.ingest([PositionFix("mover", *path[0], t - 1)])
    seen, _ = await asyncio.gather(count_cells(), move())
    # every snapshot of all the cells on the path holds the mover exactly once: never in two or none
    assert set(seen) == {1}
    pages = [k async for k in live_redis.scan_iter(match=store.layout.base + "*:page:*")]
    holders = [c for c in pages if await holds(c)]
    assert holders == [store.page_key_of(*path[-1])]
    position = await store.get("mover")
    assert position is not None and position.cell == cell_of(*path[-1], 9)  # the cell, not the page


async def test_every_cell_move_is_atomic_under_concurrent_reads(store: LiveLocationStore) -> None:
    """A query covering both cells during many moves always sees the responder exactly once."""
    await store.set_profile("pacer", "run", valid_now())
    a, b = (22.5400, 114.0500), (22.5400, 114.0560)  # ~600 m apart: different cells and pages
    assert cell_of(*a, 9) != cell_of(*b, 9) and store.page_of(*a) != store.page_of(*b)
    t0 = time.time() - 100
    stop = asyncio.Event()
    counts: list[int] = []
    await store.ingest([PositionFix("pacer", *a, t0 - 1)])

    async def reader() -> None:
        while not stop.is_set():
            found = await store.nearby(22.54, 114.053, 1000)
            counts.append(sum(r.responder_id == "pacer" for r in found))

    async def writer() -> None:
        for k in range(300):
            await store.ingest([PositionFix("pacer", *(a if k % 2 else b), t0 + k * 0.1)])
        stop.set()

    await asyncio.gather(reader(), reader(), writer())
    assert len(counts) > 20 and set(counts) == {1}


async def test_out_of_order_updates_are_dropped(store: LiveLocationStore) -> None:
    await store.set_profile("phone", "walk", valid_now())
    t = time.time() - 10
    assert await store.ingest([PositionFix("phone", 22.54, 114.05, t)]) == [Outcome.stored]
    assert await store.ingest([PositionFix("phone", 22.60, 114.10, t - 5)]) == [Outcome.stale]
    assert await store.ingest([PositionFix("phone", 22.60, 114.10, t)]) == [Outcome.stale]  # resend
    pos = await store.get("phone")
    assert pos is not None and (pos.lat, pos.lng) == (22.54, 114.05)


async def test_stale_positions_are_never_returned_and_sweeping_frees_them(store: LiveLocationStore) -> None:
    await store.set_profile("old", "walk", valid_now())
    await store.set_profile("new", "walk", valid_now())
    now = time.time()
    await store.ingest(
        [PositionFix("old", 22.54, 114.05, now - 121), PositionFix("new", 22.54, 114.0501, now)]
    )
    assert [r.responder_id for r in await store.nearby(22.54, 114.05, 100, at=now)] == ["new"]
    assert await store.sweep(now) == 1
    assert await store.get("old") is None
    assert await store.get("new") is not None
    assert await store.is_on_duty("old")  # still on duty: the next fix is welcome


async def test_off_duty_and_unknown_positions_are_not_kept(store: LiveLocationStore) -> None:
    assert await store.ingest([PositionFix("stranger", 22.54, 114.05, time.time())]) == [Outcome.not_on_duty]
    assert await store.get("stranger") is None
    await store.set_profile("shift", "walk", valid_now())
    await store.ingest([PositionFix("shift", 22.54, 114.05, time.time())])
    assert await store.remove("shift")
    assert await store.get("shift") is None
    assert not await store.nearby(22.54, 114.05, 500)
    assert await store.ingest([PositionFix("shift", 22.54, 114.05, time.time())]) == [Outcome.not_on_duty]


async def test_certificates_decide_who_is_returned(store: LiveLocationStore) -> None:
    now = time.time()
    expired = [CertificatePeriod("cpr", int(now) - 400 * DAY, int(now) - DAY)]
    await store.set_profile("lapsed", "walk", expired)
    await store.set_profile("aed-only", "walk", valid_now("aed"))
    assert await store.ingest([PositionFix("lapsed", 22.54, 114.05, now)]) == [Outcome.not_qualified]
    await store.ingest([PositionFix("aed-only", 22.54, 114.05, now)])
    assert [r.responder_id for r in await store.nearby(22.54, 114.05, 100, cert_kinds={"aed"})] == [
        "aed-only"
    ]
    assert not await store.nearby(22.54, 114.05, 100, cert_kinds={"cpr"})
    # the certificate lapses while on duty: refreshing the profile drops the position at once
    await store.set_profile("aed-only", "walk", expired)
    assert await store.get("aed-only") is None
    assert not await store.nearby(22.54, 114.05, 100)


async def test_mode_comes_from_profile_unless_the_update_says_otherwise(store: LiveLocationStore) -> None:
    await store.set_profile("rider", "ebike", valid_now())
    now = time.time()
    await store.ingest([PositionFix("rider", 22.54, 114.05, now - 2)])
    assert (await store.get("rider")).mode == "ebike"  # type: ignore[union-attr]
    await store.ingest([PositionFix("rider", 22.54, 114.05, now - 1, mode="walk")])
    assert (await store.get("rider")).mode == "walk"  # type: ignore[union-attr]


async def test_a_batch_larger_than_a_chunk_answers_every_fix_in_order(store: LiveLocationStore) -> None:
    """A gateway batch spans several script calls run concurrently: outcomes stay one per fix, in order."""
    now = time.time()
    expired = [CertificatePeriod("cpr", int(now) - 400 * DAY, int(now) - DAY)]
    n = INGEST_CHUNK * 2 + 347
    expected = []
    fixes = []
    for i in range(n):
        rid = f"b{i:05d}"
        kind = i % 4
        if kind == 0:  # on duty and qualified: stored
            await store.set_profile(rid, "walk", valid_now())
            expected.append(Outcome.stored)
        elif kind == 1:  # never on duty
            expected.append(Outcome.not_on_duty)
        elif kind == 2:  # certificate lapsed
            await store.set_profile(rid, "walk", expired)
            expected.append(Outcome.not_qualified)
        else:  # already holds a newer position: this one is out of order
            await store.set_profile(rid, "walk", valid_now())
            assert await store.ingest([PositionFix(rid, 22.6, 114.1, now)]) == [Outcome.stored]
            expected.append(Outcome.stale)
        fixes.append(PositionFix(rid, 22.54 + i * 1e-5, 114.05, now - 1, 4.0, None))
    assert await store.ingest(fixes) == expected
    kept = await store.get("b00004")
    assert kept is not None and (kept.lat, kept.accuracy_m) == (round(22.54 + 4e-5, 6), 4.0)
    moved_back = await store.get("b00003")
    assert moved_back is not None and (moved_back.lat, moved_back.lng) == (22.6, 114.1)


async def test_an_id_the_packed_format_cannot_carry_is_refused(store: LiveLocationStore) -> None:
    for bad in ("x" * 37, "a\0b", ""):
        with pytest.raises(ValueError, match="responder_id"):
            await store.ingest([PositionFix(bad, 22.54, 114.05, time.time())])


async def test_single_fixes_from_many_phones_share_calls_and_keep_their_own_outcomes(
    store: LiveLocationStore,
) -> None:
    now = time.time()
    on_duty = [f"p{i:03d}" for i in range(0, 200, 2)]
    await store.set_profiles([(rid, "walk", valid_now()) for rid in on_duty])
    fixes = [PositionFix(f"p{i:03d}", 22.5 + i * 1e-4, 114.05, now) for i in range(200)]
    outcomes = await asyncio.gather(*(store.ingest_one(f) for f in fixes))
    assert outcomes == [Outcome.stored if i % 2 == 0 else Outcome.not_on_duty for i in range(200)]
    for i in (0, 100, 198):
        kept = await store.get(f"p{i:03d}")
        assert kept is not None and kept.lat == round(22.5 + i * 1e-4, 6)
    assert await store.get("p001") is None


async def test_certificate_periods_decide_at_the_moment_asked_even_when_the_summary_cannot_say(
    store: LiveLocationStore,
) -> None:
    """A record summarises one period per kind; two of a kind (a renewal with a gap) or an unknown
    kind send the query to the profile, which must answer exactly the same way."""
    now = int(time.time())
    simple = [CertificatePeriod("cpr", now - DAY, now + 30)]
    renewed = [CertificatePeriod("cpr", now - DAY, now + 10), CertificatePeriod("cpr", now + 60, now + DAY)]
    foreign = [CertificatePeriod("bls", now - DAY, now + DAY)]
    for rid, certs in (("simple", simple), ("renewed", renewed), ("foreign", foreign)):
        await store.set_profile(rid, "walk", certs)
        assert await store.ingest([PositionFix(rid, 22.54, 114.05, now)]) == [Outcome.stored]

    async def found(at: float, kinds: set[str] | None = None) -> set[str]:
        return {r.responder_id for r in await store.nearby(22.54, 114.05, 50, at=at, cert_kinds=kinds)}

    assert await found(now + 5) == {"simple", "renewed", "foreign"}
    assert await found(now + 30) == {"foreign"}  # simple lapsed; renewed is in its gap
    assert await found(now + 90) == {"renewed", "foreign"}
    assert await found(now + 90, {"cpr"}) == {"renewed"}
    assert await found(now + 5, {"bls"}) == {"foreign"}
    assert await found(now + 5, {"aed"}) == set()


async def test_an_upgrade_with_redis_kept_drops_the_earlier_layouts_and_recovers_on_the_next_fix(
    store: LiveLocationStore, live_redis: RedisClient
) -> None:
    """Earlier layouts (a hash of text positions per cell, records before tiers, the pages and the one
    profile hash before regions) are deleted at start-up; the profiles come back from the registry
    (the loss markers are missing, so the upkeep rebuilds) and positions with the phones' next fixes."""
    now = time.time()
    cell = cell_of(22.54, 114.05, 9)
    certs = f"cpr:{int(now) - DAY}:{int(now) + DAY}"
    cell_prefix, record_prefix, page_prefix = store.legacy_prefixes
    legacy = [cell_prefix + cell, record_prefix + store.page_of(22.54, 114.05), page_prefix + cell]
    await live_redis.hset(legacy[0], "veteran", f"22.54,114.05,{int(now * 1000)},5,walk")
    await live_redis.set(legacy[1], b"\1" * (RECORD_DTYPE.itemsize - 1))
    await live_redis.set(legacy[2], b"\1" * RECORD_DTYPE.itemsize)
    await live_redis.hset(store.legacy_keys[0], "veteran", f"{cell}@0|walk|{certs}")
    assert await store.profiles_lost()
    assert await store.drop_legacy_cells() == 4
    assert not any([await live_redis.exists(key) for key in [*legacy, store.legacy_keys[0]]])
    assert await store.get("veteran") is None and not await store.nearby(22.54, 114.05, 50, at=now)
    await store.set_profile("veteran", "walk", valid_now())  # the rebuild from the registry
    assert await store.ingest([PositionFix("veteran", 22.54, 114.05, now + 1)]) == [Outcome.stored]
    assert [r.responder_id for r in await store.nearby(22.54, 114.05, 50, at=now + 1)] == ["veteran"]


async def test_changing_the_page_size_with_redis_kept_drains_the_old_keys(live_redis: RedisClient) -> None:
    """A deployment going from a key per cell to pages (or back) keeps Redis: each responder moves
    to its new page with its next fix, going off duty still removes the old record, and the sweeper
    drains the silent ones. Nobody is ever kept twice."""
    keys = Keys("rctest-live-" + secrets.token_hex(4))
    per_cell = LiveLocationStore(live_redis, keys, StoreSettings(live_page_levels=0))
    paged = LiveLocationStore(live_redis, keys, StoreSettings(live_page_levels=1))
    now = time.time()
    where = {"moving": (22.5400, 114.0500), "leaving": (22.5410, 114.0520), "silent": (22.5420, 114.0540)}
    try:
        await per_cell.set_profiles([(rid, "walk", valid_now()) for rid in where])
        await per_cell.ingest([PositionFix(rid, *at, now - 100) for rid, at in where.items()])
        old_keys = {per_cell.page_key_of(*at) for at in where.values()}

        assert await paged.ingest([PositionFix("moving", *where["moving"], now)]) == [Outcome.stored]
        assert await paged.remove("leaving")
        found = await paged.nearby(22.541, 114.052, 1000, at=now)
        assert [r.responder_id for r in found] == ["moving"]  # the silent one waits for its next fix
        assert await paged.sweep(now_s=now + 60) == 1  # its position aged past the limit: drained
        live = {k async for k in live_redis.scan_iter(match=paged.layout.base + "*:page:*")}
        assert not live & old_keys and live == {paged.page_key_of(*where["moving"])}
        position = await paged.get("moving")
        assert position is not None and position.cell == cell_of(*where["moving"], 9)
    finally:
        await per_cell.aclose()
        await paged.aclose()
        async for key in live_redis.scan_iter(match=keys("*"), count=1000):
            await live_redis.delete(key)


async def test_random_moves_duty_changes_and_sweeps_keep_every_cell_exact(store: LiveLocationStore) -> None:
    """Hundreds of responders crowded into a few cells move, go off and on duty, lapse and are swept
    in random order; the cells' records (appended, overwritten in place, cut from the middle) must
    always say exactly what a plain model of the same operations says."""
    rng = random.Random(7)
    now = time.time()
    ok, lapsed = valid_now(), [CertificatePeriod("cpr", int(now) - 400 * DAY, int(now) - DAY)]
    model: dict[str, tuple[float, float, float] | None] = {}  # on duty: position or None
    ids = [f"m{i:03d}" for i in range(300)]
    clock = now - 100

    async def kept_equals_model() -> None:
        kept = [(p.responder_id, (p.lat, p.lng)) for p in await store.positions()]
        assert len(kept) == len(dict(kept))  # nobody kept twice
        assert dict(kept) == {rid: pos[:2] for rid, pos in model.items() if pos is not None}

    for step in range(3000):
        if step % 500 == 499:
            await kept_equals_model()
        rid = rng.choice(ids)
        action = rng.random()
        clock += 0.01
        if action < 0.005:  # the sweeper, as if ~115 s had passed: all but the last ~5 s of fixes go
            # (the cut falls between the 0.01 s steps of the clock, far from the store's 1 ms rounding)
            await store.sweep(now_s=clock + 115.005)
            model.update({r: None for r, p in model.items() if p is not None and p[2] < clock - 4.995})
        elif action < 0.08:
            await store.set_profile(rid, "walk", ok)
            model.setdefault(rid, None)
        elif action < 0.12:
            await store.remove(rid)
            model.pop(rid, None)
        elif action < 0.14 and rid in model:
            await store.set_profile(rid, "walk", lapsed, now_s=now)  # lapsed: position dropped at once
            await store.set_profile(rid, "walk", ok, now_s=now)  # renewed: back on duty, no position
            model[rid] = None
        else:  # a fix within ~600 m: a handful of res-9 cells shared by everyone
            lat, lng = 22.54 + rng.uniform(-0.004, 0.004), 114.05 + rng.uniform(-0.004, 0.004)
            stale = rng.random() < 0.1 and model.get(rid) is not None  # an out-of-order resend
            ts = clock - 50 if stale else clock
            outcome = (await store.ingest([PositionFix(rid, lat, lng, ts)]))[0]
            if rid not in model:
                assert outcome is Outcome.not_on_duty
            elif stale:
                assert outcome is Outcome.stale
            else:
                assert outcome is Outcome.stored
                model[rid] = (round(lat, 6), round(lng, 6), ts)
    await kept_equals_model()
    for _ in range(40):
        lat, lng = 22.54 + rng.uniform(-0.005, 0.005), 114.05 + rng.uniform(-0.005, 0.005)
        radius = rng.uniform(50, 700)
        got = [r.responder_id for r in await store.nearby(lat, lng, radius, at=clock)]
        expected = sorted(
            (float(haversine_m_np(lat, lng, p[0], p[1])), rid)
            for rid, p in model.items()
            if p is not None and float(haversine_m_np(lat, lng, p[0], p[1])) <= radius
        )
        assert got == [rid for _, rid in expected]


async def test_a_loss_is_told_by_the_markers_not_by_the_profile_hashes(
    store: LiveLocationStore, live_redis: RedisClient
) -> None:
    assert await store.profiles_lost() and await store.warming()  # never rebuilt in this namespace
    await store.mark_rebuilt(await store.begin_rebuild())
    assert not await store.profiles_lost() and not await store.warming()
    # Redis restarts or is flushed, and a duty change recreates a profile hash before the check
    await _drop_namespace(live_redis, Keys(store.layout.base.removesuffix(":live:")))
    await store.set_profile("clocked-on", "walk", valid_now())
    assert await store.profiles_lost() and await store.warming()
    # a shard loses its data during the rebuild: its epoch went too, so the rebuild cannot mark it
    token = await store.begin_rebuild()
    generation, epoch, _ = store.layout.marker_keys((await store.markers())[-1])
    await live_redis.delete(epoch)
    await store.mark_rebuilt(token, warmup_s=30)
    assert await store.profiles_lost()
    await store.mark_rebuilt(await store.begin_rebuild(), warmup_s=30)
    assert not await store.profiles_lost() and await store.warming()  # positions streaming back
    # one shard of several restarted: its marker is gone, and that alone reads as a loss
    await live_redis.delete(generation)
    assert await store.profiles_lost()


async def test_the_tier_rides_in_the_record_through_moves_fixes_profile_changes_and_sweeps(
    store: LiveLocationStore,
) -> None:
    """A residential incident's query finds only responders whose tier allows homes, from the
    record alone: the tier must survive a fix in the same page, a move to another page, a profile
    change in place (either way), and a sweep's rewrite of the profile."""
    now = time.time()

    async def found(*, in_homes: bool, lat: float = 22.54, lng: float = 114.05) -> set[str]:
        return {r.responder_id for r in await store.nearby(lat, lng, 300, at=now + 10, in_homes=in_homes)}

    await store.set_profile("home-ok", "walk", valid_now(), homes=True)
    await store.set_profile("public-only", "walk", valid_now())
    await store.ingest([PositionFix(rid, 22.54, 114.05, now) for rid in ("home-ok", "public-only")])
    assert await found(in_homes=False) == {"home-ok", "public-only"}
    assert await found(in_homes=True) == {"home-ok"}

    await store.ingest([PositionFix("home-ok", 22.5401, 114.0501, now + 1)])  # same page
    assert await found(in_homes=True) == {"home-ok"}
    far = (22.56, 114.08)  # another page
    await store.ingest([PositionFix(rid, *far, now + 2) for rid in ("home-ok", "public-only")])
    assert await found(in_homes=True, lat=far[0], lng=far[1]) == {"home-ok"}
    assert await found(in_homes=False, lat=far[0], lng=far[1]) == {"home-ok", "public-only"}

    await store.set_profile("public-only", "walk", valid_now(), homes=True)  # opted in, on duty
    await store.set_profile("home-ok", "walk", valid_now())  # opted out
    assert await found(in_homes=True, lat=far[0], lng=far[1]) == {"public-only"}
    assert await store.sweep(now_s=now + 10) == 0  # rewrites nothing that is fresh...
    assert await store.sweep(now_s=now + 500) == 2  # ...and the profiles it rewrites keep the tier
    await store.ingest([PositionFix(rid, *far, now + 400) for rid in ("home-ok", "public-only")])
    fresh = await store.nearby(*far, 300, at=now + 400, in_homes=True)
    assert [r.responder_id for r in fresh] == ["public-only"]


# --- moves between regions (the hash tags of the cluster layout) ---------------------------------
WEST, EAST = (22.5400, 114.0840), (22.5400, 114.0880)  # ~400 m apart, either side of a region border


def region(lat: float, lng: float) -> str:
    """The region of a position: the res-5 ancestor of its res-9 cell (H3 ancestors are not the
    res-5 cells the points lie in: children stick out of their parents)."""
    return h3.cell_to_parent(cell_of(lat, lng, 9), 5)


def test_the_two_spots_lie_in_different_regions() -> None:
    assert region(*WEST) != region(*EAST)


async def test_a_responder_walking_across_a_region_border_is_never_twice_and_never_none(
    store: LiveLocationStore, live_redis: RedisClient
) -> None:
    """Back and forth across the border while queries covering both sides run: each query finds the
    walker once, at a position they reported, and in the end exactly one region holds them."""
    await store.set_profile("walker", "walk", valid_now())
    t0 = time.time() - 100
    stop = asyncio.Event()
    counts: list[int] = []
    await store.ingest([PositionFix("walker", *WEST, t0 - 1)])

    async def reader() -> None:
        while not stop.is_set():
            found = await store.nearby(22.54, 114.086, 1000)
            counts.append(sum(r.responder_id == "walker" for r in found))
            assert all((r.lat, r.lng) in (WEST, EAST) for r in found)

    async def walker() -> None:
        for k in range(200):
            fix = PositionFix("walker", *(EAST if k % 2 == 0 else WEST), t0 + k * 0.1)
            assert await store.ingest([fix]) == [Outcome.stored]
        stop.set()

    await asyncio.gather(reader(), reader(), walker())
    assert len(counts) > 20 and max(counts) == 1  # never twice
    if not store.cluster:  # one MGET reads both regions at one instant: never none either
        assert set(counts) == {1}
    else:  # parallel reads of two slots: a miss needs a whole move between them (the docstring)
        assert counts.count(0) <= len(counts) // 100
    holders = [k async for k in live_redis.scan_iter(match=store.layout.base + "*:page:*")]
    assert holders == [store.page_key_of(*WEST)]  # the last fix (k = 199) was in the west
    position = await store.get("walker")
    assert position is not None and (position.lat, position.lng) == WEST
    assert [p.responder_id for p in await store.positions()] == ["walker"]


async def test_an_out_of_order_fix_from_another_region_is_dropped(store: LiveLocationStore) -> None:
    await store.set_profile("phone", "walk", valid_now())
    t = time.time() - 10
    assert await store.ingest([PositionFix("phone", *WEST, t)]) == [Outcome.stored]
    assert await store.ingest([PositionFix("phone", *EAST, t - 5)]) == [Outcome.stale]
    assert await store.ingest([PositionFix("phone", *EAST, t)]) == [Outcome.stale]
    position = await store.get("phone")
    assert position is not None and (position.lat, position.lng) == WEST
    assert await store.ingest([PositionFix("phone", *EAST, t + 1)]) == [Outcome.stored]
    assert [(p.lat, p.lng) for p in await store.positions()] == [EAST]


async def test_going_off_duty_wins_over_a_racing_move_between_regions(
    store: LiveLocationStore, live_redis: RedisClient
) -> None:
    """Off duty lands between a move's insert in the new region and its directory commit: the move
    must fail its compare-and-set and take its copy back, leaving nothing of the position anywhere.
    Then the same race left to chance, many times."""
    removed: list[bool] = []
    original = store._store_fixes

    async def insert_then_clock_off(batch: np.ndarray, profiles: list[str]) -> list[str]:
        codes = await original(batch, profiles)
        if profiles and not removed:  # the move's step 2 is done: the responder goes off duty now
            removed.append(await store.remove("leaver"))
        return codes

    await store.set_profile("leaver", "walk", valid_now())
    now = time.time()
    await store.ingest([PositionFix("leaver", *WEST, now - 2)])
    store._store_fixes = insert_then_clock_off  # type: ignore[method-assign]
    try:
        await store.ingest([PositionFix("leaver", *EAST, now - 1)])
    finally:
        del store._store_fixes
    assert removed == [True]
    assert not await store.is_on_duty("leaver") and await store.get("leaver") is None
    assert not [k async for k in live_redis.scan_iter(match=store.layout.base + "*:page:*")]
    assert not await store.nearby(22.54, 114.086, 1000)

    rng = random.Random(3)
    for k in range(60):
        rid = f"racer{k}"
        await store.set_profile(rid, "walk", valid_now())
        await store.ingest([PositionFix(rid, *WEST, now - 2)])
        fix = store.ingest([PositionFix(rid, *EAST, now - 1)])
        off = store.remove(rid)
        await asyncio.gather(*((fix, off) if rng.random() < 0.5 else (off, fix)))
        assert not await store.is_on_duty(rid) and await store.get(rid) is None
    assert not await store.nearby(22.54, 114.086, 1000)
    assert not [k async for k in live_redis.scan_iter(match=store.layout.base + "*:page:*")]
    assert await store.positions() == []


class WorkerDied(Exception):
    """A worker killed in the middle of a move between regions."""


@contextmanager
def worker_dies_after(store: LiveLocationStore, step: str) -> Iterator[None]:
    """The worker dies right after one step of a move between regions: "insert" (the copy written in
    the new region, the directory not yet told) or "commit" (the directory names the new region,
    the old one has not let go and the new copy is not confirmed)."""
    name = {"insert": "_store_fixes", "commit": "_directory_commit"}[step]
    original = getattr(store, name)

    async def dying(*args: Any, **kwargs: Any) -> Any:
        reply = await original(*args, **kwargs)
        if step == "commit" or args[1]:  # the insert of a move carries the directory's profiles
            raise WorkerDied(step)
        return reply

    setattr(store, name, dying)
    try:
        yield
    finally:
        setattr(store, name, original)


async def _left_anywhere(store: LiveLocationStore, live_redis: RedisClient, rid: str) -> list[str]:
    """Every key still holding something of a responder: pages with its record, profiles, marks."""
    held = []
    async for key in live_redis.scan_iter(match=store.layout.base + "*", count=1000):
        if ":page:" in key:
            blob = await live_redis.execute_command("GET", key, **{NEVER_DECODE: []})
            if rid in decode_ids(np.frombuffer(blob, dtype=RECORD_DTYPE)["id"]):
                held.append(key)
        elif key.endswith((":who", ":dir", ":moves")) and await live_redis.hexists(key, rid):
            held.append(key)
    return held


async def _moves_marked(store: LiveLocationStore, live_redis: RedisClient, rid: str) -> list[str]:
    tag = store.layout.directory_tag(rid)
    marks = await live_redis.hget(store.layout.moves_key(tag), rid)
    return [token.split(":")[0] for token in (marks or "").split()]


async def _sweep_moves(store: LiveLocationStore, now_s: float) -> int:
    return sum([await store.sweep_moves(tag, now_s) for tag in store.layout.directory_tags()])


@pytest.mark.parametrize("step", ["insert", "commit"])
async def test_off_duty_leaves_no_copy_when_a_moving_worker_died(
    store: LiveLocationStore, live_redis: RedisClient, step: str
) -> None:
    """A worker dies in the middle of a move between regions, leaving two regions with a copy: the
    responder is found once, at the newer position; going off duty then leaves nothing anywhere, and
    the phone's later fixes from the new region are refused, not stored in place."""
    await store.set_profile("dying", "walk", valid_now())
    now = time.time()
    await store.ingest([PositionFix("dying", *WEST, now - 3)])
    with worker_dies_after(store, step), pytest.raises(WorkerDied):
        await store.ingest([PositionFix("dying", *EAST, now - 2)])
    assert len([k for k in await _left_anywhere(store, live_redis, "dying") if ":page:" in k]) == 2
    assert await _moves_marked(store, live_redis, "dying") == [region(*(EAST if step == "insert" else WEST))]
    assert [(r.lat, r.lng) for r in await store.nearby(22.54, 114.086, 1000)] == [EAST]

    assert await store.remove("dying")
    assert await _left_anywhere(store, live_redis, "dying") == []
    assert not await store.nearby(22.54, 114.086, 1000) and await store.positions() == []
    assert await store.ingest([PositionFix("dying", *EAST, now - 1)]) == [Outcome.not_on_duty]
    assert await store.ingest([PositionFix("dying", *WEST, now)]) == [Outcome.not_on_duty]
    assert await _left_anywhere(store, live_redis, "dying") == []


@pytest.mark.parametrize("step", ["insert", "commit"])
async def test_the_next_fix_repairs_a_move_whose_worker_died(
    store: LiveLocationStore, live_redis: RedisClient, step: str
) -> None:
    """The phone's next fix from the new region goes through the directory (the copy there is not
    confirmed) and finishes the move: the directory names the new region and fixes are stored in
    place again. A worker that died after its commit also left the old copy (older: queries never
    pick it); the sweeper drops it once the dead worker's mark is older than any move can take."""
    await store.set_profile("mover", "walk", valid_now())
    now = time.time()
    await store.ingest([PositionFix("mover", *WEST, now - 3)])
    with worker_dies_after(store, step), pytest.raises(WorkerDied):
        await store.ingest([PositionFix("mover", *EAST, now - 2)])
    assert await store.ingest([PositionFix("mover", *EAST, now - 1)]) == [Outcome.stored]
    where = await live_redis.hget(store.layout.who_key(region(*EAST)), "mover")
    assert where is not None and not where.split("|")[0].endswith("!")  # confirmed
    assert (await store.profile("mover") or "").startswith(region(*EAST) + "|")
    assert await store.ingest([PositionFix("mover", *EAST, now)]) == [Outcome.stored]  # in place again
    assert [(p.lat, p.lng, p.ts) for p in await store.positions()] == [(*EAST, pytest.approx(now, abs=1e-3))]
    assert [(r.lat, r.lng) for r in await store.nearby(22.54, 114.086, 1000)] == [EAST]
    pages = [k for k in await _left_anywhere(store, live_redis, "mover") if ":page:" in k]
    left_behind = [store.page_key_of(*WEST)] if step == "commit" else []
    assert sorted(pages) == sorted([store.page_key_of(*EAST), *left_behind])

    assert await _sweep_moves(store, now) == 0  # the dead worker's mark: too fresh to judge
    assert await _moves_marked(store, live_redis, "mover")
    assert await _sweep_moves(store, now + MOVE_MARK_S + 1) == len(left_behind)
    assert await _moves_marked(store, live_redis, "mover") == []
    pages = [k for k in await _left_anywhere(store, live_redis, "mover") if ":page:" in k]
    assert pages == [store.page_key_of(*EAST)]
    assert [(p.lat, p.lng) for p in await store.positions()] == [EAST]


@pytest.mark.parametrize("step", ["insert", "commit"])
async def test_the_sweeper_drops_the_copy_a_dead_move_left(
    store: LiveLocationStore, live_redis: RedisClient, step: str
) -> None:
    """No fix follows the dead move: once its mark is older than any move can take, the sweeper
    drops the copy the directory does not name (the new one before the commit, the old one after)."""
    await store.set_profile("stuck", "walk", valid_now())
    now = time.time()
    await store.ingest([PositionFix("stuck", *WEST, now - 3)])
    with worker_dies_after(store, step), pytest.raises(WorkerDied):
        await store.ingest([PositionFix("stuck", *EAST, now - 2)])
    assert await _sweep_moves(store, now) == 0
    assert len([k for k in await _left_anywhere(store, live_redis, "stuck") if ":page:" in k]) == 2
    assert await _sweep_moves(store, now + MOVE_MARK_S + 1) == 1
    named = WEST if step == "insert" else EAST
    assert [k for k in await _left_anywhere(store, live_redis, "stuck") if ":page:" in k] == [
        store.page_key_of(*named)
    ]
    assert [(p.lat, p.lng) for p in await store.positions()] == [named]
    assert await _moves_marked(store, live_redis, "stuck") == []


async def test_a_profile_change_during_a_move_reaches_the_new_region(store: LiveLocationStore) -> None:
    """A new profile lands between a move's insert and its commit: the commit fails, the move starts
    again with the new profile, and the record carries it (here: the tier)."""
    changed: list[bool] = []
    original = store._store_fixes

    async def insert_then_opt_in(batch: np.ndarray, profiles: list[str]) -> list[str]:
        codes = await original(batch, profiles)
        if profiles and not changed:
            changed.append(True)
            await store.set_profile("opting", "walk", valid_now(), homes=True)
        return codes

    await store.set_profile("opting", "walk", valid_now())
    now = time.time()
    await store.ingest([PositionFix("opting", *WEST, now - 2)])
    store._store_fixes = insert_then_opt_in  # type: ignore[method-assign]
    try:
        assert await store.ingest([PositionFix("opting", *EAST, now - 1)]) == [Outcome.stored]
    finally:
        del store._store_fixes
    found = await store.nearby(*EAST, 100, at=now, in_homes=True)
    assert [r.responder_id for r in found] == ["opting"] and changed
    assert [(p.lat, p.lng) for p in await store.positions()] == [EAST]
    profile = await store.profile("opting")
    assert profile is not None and profile.startswith(region(*EAST) + "|walk|1|")


async def test_a_batch_of_fixes_moving_every_which_way_matches_a_model(store: LiveLocationStore) -> None:
    """Hundreds of responders each take a random walk over four regions in gateway batches: every
    fix's outcome and the final positions (each held once) are what a plain model says."""
    rng = random.Random(11)
    now = time.time() - 100
    ids = [f"w{i:03d}" for i in range(300)]
    await store.set_profiles([(rid, "walk", valid_now()) for rid in ids])
    model: dict[str, tuple[float, float, float]] = {}
    for step in range(8):
        fixes = []
        for rid in rng.sample(ids, 200):
            lat, lng = 22.50 + rng.uniform(0, 0.12), 114.03 + rng.uniform(0, 0.12)
            ts = now + step - (5 if rid in model and rng.random() < 0.1 else 0)
            fixes.append(PositionFix(rid, lat, lng, ts))
        outcomes = await store.ingest(fixes)
        for fix, outcome in zip(fixes, outcomes, strict=True):
            newer = fix.responder_id not in model or model[fix.responder_id][2] < fix.ts
            assert outcome is (Outcome.stored if newer else Outcome.stale)
            if newer:
                model[fix.responder_id] = (round(fix.lat, 6), round(fix.lng, 6), fix.ts)
    assert len({region(lat, lng) for lat, lng, _ in model.values()}) >= 3
    kept = [(p.responder_id, (p.lat, p.lng)) for p in await store.positions()]
    assert len(kept) == len(dict(kept)) and dict(kept) == {rid: p[:2] for rid, p in model.items()}
    regions = {(await store.profile(rid) or "").split("|")[0] for rid in model}
    assert regions == {region(lat, lng) for lat, lng, _ in model.values()}


async def test_on_a_cluster_a_script_touching_another_slot_is_refused(
    store: LiveLocationStore, live_redis: RedisClient
) -> None:
    """What the grouping by slot is for: the cluster refuses a script whose keys span slots, even
    keys it derives rather than declares. (On a single server there are no slots to check.)"""
    if not store.cluster:
        pytest.skip("a single server has no slots")
    await store.set_profile("spanner", "walk", valid_now())
    west = _packed([PositionFix("spanner", *WEST, time.time())], store)
    east = store.layout.who_key(region(*EAST))
    assert store.layout.slot_of(region(*EAST)) != store.layout.slot_of(region(*WEST))
    # declared: the east region's key; touched: the west region's
    with pytest.raises(ResponseError, match=r"non local key|same slot"):
        await store._ingest(keys=[east], args=[store.layout.base, west, ""])


def _packed(fixes: list[PositionFix], store: LiveLocationStore) -> bytes:
    return FixColumns.of(fixes).packed(store.resolution, store.layout).tobytes()


# A province's gateway batch on the app's own cluster client: the first fixes of thousands of people
# spread over hundreds of regions move each of them in (a script call per slot, chunks in parallel).
# A cluster client's pool refuses a command past its size instead of waiting, so this once ran out
# of connections (`MaxConnectionsError`) with 64 per node.
async def test_a_province_wide_batch_is_stored_on_the_apps_cluster_client(cluster_url: str) -> None:
    redis = connect_redis(cluster_url)  # the app's client, pool size and all
    keys = Keys("rctest-province-" + secrets.token_hex(4))
    store = LiveLocationStore(redis, keys, StoreSettings())
    try:
        lat, lng = province_people(20_000, seed=7)
        now = time.time()
        certs = [CertificatePeriod("cpr", int(now) - DAY, int(now) + DAY)]
        ids = [f"p{i:05d}" for i in range(len(lat))]
        await store.set_profiles([(rid, "walk", certs) for rid in ids], now)
        fixes = [PositionFix(rid, float(a), float(o), now) for rid, a, o in zip(ids, lat, lng, strict=True)]
        outcomes = await store.ingest(fixes)
        assert outcomes.count(Outcome.stored) == len(fixes)
        assert len(await store.regions()) > 50, "the batch was meant to span many regions"
        found = await store.nearby(float(lat[0]), float(lng[0]), 50.0, at=now)
        assert ids[0] in found.responder_id
    finally:
        await store.aclose()
        async for key in redis.scan_iter(match=keys("*"), count=1000):
            await redis.delete(key)
        await redis.aclose()


async def _script_calls(redis: RedisClient) -> int:
    """Scripts run so far by every primary (one server: itself)."""
    info = (
        await redis.info("commandstats", target_nodes=RedisCluster.PRIMARIES)
        if isinstance(redis, RedisCluster)
        else {"": await redis.info("commandstats")}
    )
    return sum(stats.get("cmdstat_evalsha", {}).get("calls", 0) for stats in info.values())


async def test_a_province_wide_batch_takes_one_call_per_slot_and_answers_in_order(cluster_url: str) -> None:
    """A gateway batch of people spread over hundreds of regions, cut in chunks: the fixes queue
    by slot across the chunks, so the batch costs about one script call per slot it touches (it
    was one per slot per chunk, a few fixes each), and every fix still gets its own outcome."""
    redis = connect_redis(cluster_url)
    assert isinstance(redis, RedisCluster)
    keys = Keys("rctest-slotq-" + secrets.token_hex(4))
    store = LiveLocationStore(redis, keys, StoreSettings())
    try:
        lat, lng = province_people(6_000, seed=9)
        now = time.time()
        ids = [f"q{i:05d}" for i in range(len(lat))]
        await store.set_profiles([(rid, "walk", valid_now()) for rid in ids], now)
        first = [PositionFix(rid, float(a), float(o), now) for rid, a, o in zip(ids, lat, lng, strict=True)]
        assert set(await store.ingest(first)) == {Outcome.stored}
        # then each one's next fix, where they are: every third one older than the kept one
        second = [
            PositionFix(f.responder_id, f.lat, f.lng, now - 1 if i % 3 == 0 else now + 1, accuracy_m=7.0)
            for i, f in enumerate(first)
        ]
        packed = FixColumns.of(second).packed(store.resolution, store.layout)
        slots = {store.layout.slot_of(r.decode()) for r in packed["region"].tolist()}
        assert len(slots) > 100, "the batch was meant to span many slots"
        before = await _script_calls(redis)
        outcomes = await store.ingest(second)
        calls = await _script_calls(redis) - before
        assert outcomes == [Outcome.stale if i % 3 == 0 else Outcome.stored for i in range(len(second))]
        assert calls <= len(slots) + len(second) // INGEST_CHUNK
        kept = await store.get(ids[1])
        assert kept is not None and (kept.ts, kept.accuracy_m) == (pytest.approx(now + 1, abs=1e-3), 7.0)
        kept = await store.get(ids[0])
        assert kept is not None and (kept.ts, kept.accuracy_m) == (pytest.approx(now, abs=1e-3), None)
    finally:
        await store.aclose()
        async for key in redis.scan_iter(match=keys("*"), count=1000):
            await redis.delete(key)
        await redis.aclose()
