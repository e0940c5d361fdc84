"""The live store's own read connection against a real Redis: same answers as the pool, busy reads
through the pool, and never a late reply read as the next one after a timeout or a dropped link."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from redis.asyncio import Redis

from core.redis import ReadConnection, connect_redis


@pytest_asyncio.fixture
async def app_redis(store_env: dict[str, str]) -> AsyncIterator[Redis]:
    """The app's kind of client (bounded pool, decoded replies)."""
    client = connect_redis(store_env["REDIS_URL"])
    yield client
    await client.aclose()


@pytest_asyncio.fixture
async def values(store_env: dict[str, str]) -> AsyncIterator[dict[str, bytes]]:
    """Forty keys holding distinct binary values (bytes that would not survive decoding)."""
    prefix = "rctest-read-" + secrets.token_hex(4)
    stored = {f"{prefix}:{i}": bytes([i, 0xFF, 0xFE]) * (i + 1) for i in range(40)}
    binary = Redis.from_url(store_env["REDIS_URL"])
    await binary.mset(stored)
    yield stored
    await binary.delete(*stored)
    await binary.aclose()


async def test_reads_equal_the_pools_and_are_never_decoded(
    app_redis: Redis, values: dict[str, bytes]
) -> None:
    reader = ReadConnection(app_redis)
    try:
        keys = [*values, "rctest-read-missing"]
        assert await reader.execute("MGET", *keys) == [*values.values(), None]
    finally:
        await reader.aclose()


async def test_concurrent_reads_each_get_their_own_answer(app_redis: Redis, values: dict[str, bytes]) -> None:
    """Reads overlapping the one in flight go through the pool; every caller gets its own keys."""
    reader = ReadConnection(app_redis)
    keys = list(values)
    try:
        asks = [keys[i : i + 7] for i in range(0, 33)]
        answers = await asyncio.gather(*(reader.execute("MGET", *ask) for ask in asks))
        assert answers == [[values[k] for k in ask] for ask in asks]
    finally:
        await reader.aclose()


async def test_a_timed_out_read_leaves_no_late_reply_behind(
    app_redis: Redis, redis_client: Redis, values: dict[str, bytes]
) -> None:
    reader = ReadConnection(app_redis, timeout_s=0.2)
    first, second = list(values)[:2]
    try:
        assert await reader.execute("GET", first) == values[first]  # connected
        await redis_client.execute_command("CLIENT", "PAUSE", 600, "ALL")  # Redis answers nobody
        with pytest.raises(TimeoutError):
            await reader.execute("GET", first)
        await asyncio.sleep(0.6)  # the paused GET is answered now, on a connection since dropped
        assert await reader.execute("GET", second) == values[second]
    finally:
        await redis_client.execute_command("CLIENT", "UNPAUSE")
        await reader.aclose()


async def test_a_dropped_connection_is_read_again_through_the_pool(
    app_redis: Redis, redis_client: Redis, values: dict[str, bytes]
) -> None:
    """Redis restarted or killed the link between two reads: the read still answers."""
    reader = ReadConnection(app_redis)
    key = next(iter(values))
    try:
        own = await reader.execute("CLIENT", "ID")  # the reader's own connection, not the pool's
        assert await redis_client.execute_command("CLIENT", "KILL", "ID", own) == 1
        assert await reader.execute("GET", key) == values[key]
        assert await reader.execute("GET", key) == values[key]  # and the next one reconnects
    finally:
        await reader.aclose()


async def test_a_cluster_client_is_refused_as_it_routes_by_slot_itself(cluster_url: str) -> None:
    """One connection would reach one node only: the live store reads a cluster on a connection
    per node (`core.cluster_reads`, tests/integration/test_cluster_reads.py)."""
    cluster = connect_redis(cluster_url)
    try:
        with pytest.raises(TypeError, match="single server"):
            ReadConnection(cluster)  # type: ignore[arg-type]
    finally:
        await cluster.aclose()
