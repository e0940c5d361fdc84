"""The live store's upkeep with several workers, on the single Redis and on the cluster: each
region is swept once per period and a lost store is rebuilt once, whoever runs the loop."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator

import pytest_asyncio

from core.config import Settings
from core.db import Database
from core.redis import Keys, connect_redis
from responders.availability import CertificatePeriod
from responders.store import LiveLocationStore, PositionFix
from responders.upkeep import rebuild_if_lost, sweep_regions

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
