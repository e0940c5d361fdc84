"""A lease in Redis: one holder at a time for a job that every worker would otherwise run.

`SET key token NX PX ttl` takes it; renewing and releasing are compare-and-set scripts, so a
holder whose lease already expired (paused, partitioned) and was taken by another can neither
extend nor delete the new holder's. A dead holder's lease simply expires. The key is a single key,
so on a Redis Cluster it lives in its slot like any other (give it the hash tag of the data it
guards, and the lease and the data fail over together).

Used by the live store's upkeep (`responders.upkeep`): each region is swept once per period, the
profiles are rebuilt once after a loss, however many workers run.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import secrets
from collections.abc import AsyncIterator

from core.redis import RedisClient

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def renew_every_s(ttl_s: float) -> float:
    """How often a holder renews: a third of the lease, so two renewals may be late (a slow Redis,
    a busy event loop) before it lapses under a job still running."""
    return ttl_s / 3


def ttl_ms(ttl_s: float) -> int:
    """The lease's time in whole milliseconds, at least one (`PX 0` is refused)."""
    return max(1, math.ceil(ttl_s * 1000))


class Lease:
    """One claim on `key` for `ttl_s` seconds, with a token of its own."""

    def __init__(self, redis: RedisClient, key: str, ttl_s: float) -> None:
        self.redis = redis
        self.key = key
        self.ttl_s = ttl_s
        self.token = secrets.token_hex(16)
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)

    async def acquire(self) -> bool:
        """Take the lease if nobody holds it; True when it is ours now."""
        return bool(await self.redis.set(self.key, self.token, nx=True, px=ttl_ms(self.ttl_s)))

    async def renew(self) -> bool:
        """Extend our lease by `ttl_s` from now; False when it is no longer ours (expired, taken)."""
        return bool(await self._renew(keys=[self.key], args=[self.token, ttl_ms(self.ttl_s)]))

    async def release(self) -> bool:
        """Give the lease up early, only if it is still ours."""
        return bool(await self._release(keys=[self.key], args=[self.token]))

    @contextlib.asynccontextmanager
    async def held(self) -> AsyncIterator[bool]:
        """`async with lease.held() as ours:` the body runs knowing whether the lease is ours; while
        it runs the lease is renewed, and it is released at the end."""
        if not await self.acquire():
            yield False
            return

        async def keep() -> None:
            while True:
                await asyncio.sleep(renew_every_s(self.ttl_s))
                if not await self.renew():
                    return

        keeper = asyncio.create_task(keep())
        try:
            yield True
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
            await self.release()
