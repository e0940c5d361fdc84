"""The live store's upkeep with several workers, on the single Redis and on the cluster: each
region is swept once per period and a lost store is rebuilt once, whoever runs the loop."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator

import numpy as np
import pytest
import pytest_asyncio

from core.config import Settings
from core.db import Database
from core.redis import Keys, connect_redis
from responders.availability import CertificatePeriod
from responders.store import LiveLocationStore, PositionFix
from responders.upkeep import rebuild_if_lost, sweep_moves, sweep_regions

WORKERS = 4


@pytest_asyncio.fixture
async def workers(redis_url_each: str, store_env: dict[str, str]) -> AsyncIterator[list[LiveLocationStore]]:
    """Four workers' stores (each its own client, as each worker process has) on one namespace."""
    keys = Keys("rctest-upkeep-" + secrets.token_hex(4))
    settings = Settings(database_url=store_env["DATABASE_URL"], redis_url=redis_url_each)
    clients = [connect_redis(redis_url_each) for _ in range(WORKERS)]
    stores = [LiveLocationStore(c, keys, settings) for c in clients]
    yield stores
    for store in stores:
        await store.aclose()
    async for key in clients[0].scan_iter(match=keys("*"), count=1000):
        await clients[0].delete(key)
    for client in clients:
        await client.aclose()


async def test_each_region_is_swept_once_per_period_whatever_the_workers(
    workers: list[LiveLocationStore],
) -> None:
    store = workers[0]
    now = int(time.time())
    spots = [(22.54, 114.05), (22.54, 114.088), (22.70, 114.30), (22.45, 113.90)]  # four regions
    ids = [f"s{i}" for i in range(len(spots))]
    await store.set_profiles(
        [(rid, "walk", [CertificatePeriod("cpr", now - 9999, now + 9999)]) for rid in ids]
    )
    old = time.time() - 600  # past the staleness limit: the sweep drops them all
    await store.ingest([PositionFix(rid, *at, old) for rid, at in zip(ids, spots, strict=True)])
    assert len(await store.regions()) == len(spots)

    swept = await asyncio.gather(*(sweep_regions(w, period_s=5.0) for w in workers))
    assert sum(swept) == len(spots)  # every position once, between the four workers
    assert await store.positions() == []
    await store.ingest([PositionFix(rid, *at, old + 1) for rid, at in zip(ids, spots, strict=True)])
    again = await asyncio.gather(*(sweep_regions(w, period_s=5.0) for w in workers))
    assert sum(again) == 0  # within the period nobody sweeps again
    assert len(await store.positions()) == len(spots)


async def test_a_dead_moves_copy_is_dropped_once_whatever_the_workers(
    workers: list[LiveLocationStore],
) -> None:
    """A worker died two minutes ago between a move's insert in the east region and its commit: the
    directory parts' sweep, under a lease per part, drops that copy once between four workers."""
    store = workers[0]
    now = time.time()
    await store.set_profile("ghost", "walk", [CertificatePeriod("cpr", int(now) - 9999, int(now) + 9999)])
    west, east = (22.54, 114.084), (22.54, 114.088)  # either side of a region border
    await store.ingest([PositionFix("ghost", *west, now - 3)])
    insert = store._store_fixes

    async def dies_after_insert(batch: np.ndarray, profiles: list[str]) -> list[str]:
        codes = await insert(batch, profiles)
        if profiles:  # a move's insert (a fix staying in its region carries none)
            raise RuntimeError("worker died")
        return codes

    store._store_fixes = dies_after_insert  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="worker died"):
        await store.ingest([PositionFix("ghost", *east, now - 2)])
    del store._store_fixes
    moves = store.layout.moves_key(store.layout.directory_tag("ghost"))
    (target,) = [t.split(":")[0] for t in (await store.redis.hget(moves, "ghost") or "").split()]
    await store.redis.hset(moves, "ghost", f"{target}:{(now - 120) * 1000:.0f}")  # died two minutes ago
    assert len(await store.positions()) == 1 and len(await _pages(store)) == 2

    dropped = await asyncio.gather(*(sweep_moves(w, period_s=5.0) for w in workers))
    assert sum(dropped) == 1
    assert [(p.lat, p.lng) for p in await store.positions()] == [west]
    assert await _pages(store) == [store.page_key_of(*west)]
    assert await store.redis.hget(moves, "ghost") is None


async def _pages(store: LiveLocationStore) -> list[str]:
    return [key async for key in store.redis.scan_iter(match=store.layout.base + "*:page:*")]


async def test_a_lost_store_is_rebuilt_once_whatever_the_workers(
    workers: list[LiveLocationStore], store_env: dict[str, str]
) -> None:
    settings = Settings(database_url=store_env["DATABASE_URL"], live_warmup_s=0)
    dbs = [Database(settings.database_url, pool_size=1) for _ in workers]

    async def every_worker_checks() -> list[bool]:
        checks = (rebuild_if_lost(db, w, settings, force=False) for db, w in zip(dbs, workers, strict=True))
        return list(await asyncio.gather(*checks))

    try:
        assert await workers[0].profiles_lost()  # a fresh namespace: never rebuilt
        assert (await every_worker_checks()).count(True) == 1
        assert not any([await w.profiles_lost() for w in workers])
        assert not any(await every_worker_checks())
    finally:
        for db in dbs:
            await db.dispose()
