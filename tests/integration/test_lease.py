"""Leases on a real Redis and on the real cluster: one holder at a time, expiry, renewal, release."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import pytest_asyncio

from core.lease import Lease, renew_every_s, ttl_ms
from core.redis import RedisClient, connect_redis


@pytest_asyncio.fixture
async def redis(redis_url_each: str) -> AsyncIterator[RedisClient]:
    client = connect_redis(redis_url_each)
    yield client
    await client.aclose()


def key() -> str:
    return "rctest-lease-" + secrets.token_hex(4)


def test_a_holder_renews_well_before_its_lease_lapses_and_never_asks_for_zero_ms() -> None:
    assert renew_every_s(30.0) == 10.0
    assert ttl_ms(0.0001) == 1 and ttl_ms(1.5) == 1500


async def test_two_holders_one_lease(redis: RedisClient) -> None:
    k = key()
    first, second = Lease(redis, k, 5.0), Lease(redis, k, 5.0)
    assert await first.acquire()
    assert not await second.acquire()
    assert not await second.renew() and not await second.release()  # not theirs: no effect
    assert await redis.get(k) == first.token
    assert await first.release()
    assert await second.acquire() and not await first.renew()
    await second.release()


async def test_a_dead_holders_lease_expires_and_a_late_one_cannot_touch_the_next(redis: RedisClient) -> None:
    k = key()
    dead, next_holder = Lease(redis, k, 0.2), Lease(redis, k, 5.0)
    assert await dead.acquire()
    assert not await next_holder.acquire()
    await asyncio.sleep(0.3)  # the holder never renewed
    assert await next_holder.acquire()
    assert not await dead.renew() and not await dead.release()  # back from a pause: too late
    assert await redis.get(k) == next_holder.token
    await next_holder.release()


async def test_renewal_keeps_a_long_job_its_lease(redis: RedisClient) -> None:
    k = key()
    worker, other = Lease(redis, k, 2.0), Lease(redis, k, 2.0)
    async with worker.held() as ours:
        assert ours
        for _ in range(9):  # 4.5 s: over twice the lease, renewed every 0.67 s (slack for a busy machine)
            await asyncio.sleep(0.5)
            assert not await other.acquire()
    assert await redis.get(k) is None  # released at the end
    async with other.held() as ours, worker.held() as theirs:
        assert ours and not theirs
    assert await redis.get(k) is None
