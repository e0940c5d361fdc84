"""A province's gateway batch on the app's own cluster client: the first fixes of thousands of
people spread over hundreds of regions move each of them in (a script call per slot, chunks in
parallel). A cluster client's pool refuses a command past its size instead of waiting, so this
once ran out of connections (`MaxConnectionsError`) with 64 per node."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from benchmarks.province import people
from core.redis import Keys, connect_redis
from responders.availability import CertificatePeriod
from responders.store import LiveLocationStore, Outcome, PositionFix

DAY = 86_400


@dataclass
class _Settings:
    h3_resolution: int = 9
    staleness_s: float = 120.0
    live_page_levels: int = 1
    live_region_resolution: int = 5
    live_directory_parts: int = 16


async def test_a_province_wide_batch_is_stored_on_the_apps_cluster_client(cluster_url: str) -> None:
    redis = connect_redis(cluster_url)  # the app's client, pool size and all
    keys = Keys("rctest-province-" + secrets.token_hex(4))
    store = LiveLocationStore(redis, keys, _Settings())
    try:
        lat, lng = people(20_000, seed=7)
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
