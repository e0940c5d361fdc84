"""Which responders have a socket open on some API worker, for the ladder's first decision.

A responder whose phone holds a socket gets the alert there first, and Web Push only after
`receipt_timeout_s` without a receipt; one without a socket gets the push at once. The socket may
be on any worker, so each worker counts its sockets per responder in Redis (INCR on connect,
DECR on close). The count errs on the safe side: a worker that dies with sockets open leaves
counts behind until the key expires (`TTL_S`; refreshed as the phone sends positions), which only
delays that responder's push by `receipt_timeout_s`; Redis down reads as "no socket" (push at once).
On a cluster the counts of one incident's responders live in many slots: they are read with one
MGET per slot, sent together (`mget_nonatomic`), not one MGET across slots (CROSSSLOT).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Collection

from redis.asyncio import RedisCluster
from redis.exceptions import RedisClusterException, RedisError

from core.redis import Keys, RedisClient

log = logging.getLogger(__name__)
TTL_S = 3600
REFRESH_S = 300.0  # a socket that streams positions refreshes its count's expiry this often
UNAVAILABLE: tuple[type[Exception], ...] = (RedisError, RedisClusterException)
"""Redis down, loading, or a cluster failing over: presence is then unknown, never an error."""


class Presence:
    def __init__(self, redis: RedisClient, keys: Keys) -> None:
        self.redis, self.keys = redis, keys

    def _key(self, responder_id: str) -> str:
        return self.keys("sockets", responder_id)

    async def attach(self, responder_id: str) -> None:
        await self._change(responder_id, 1)

    async def detach(self, responder_id: str) -> None:
        await self._change(responder_id, -1)

    async def refresh(self, responder_id: str) -> None:
        with contextlib.suppress(*UNAVAILABLE):
            await self.redis.expire(self._key(responder_id), TTL_S)

    async def _change(self, responder_id: str, by: int) -> None:
        """Never raises: a socket works without Redis; the ladder then sees no socket."""
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.incrby(self._key(responder_id), by)
                pipe.expire(self._key(responder_id), TTL_S)
                await pipe.execute()
        except UNAVAILABLE as exc:
            log.warning("socket presence not counted (Redis): %s", exc)

    async def attached(self, responder_ids: Collection[str]) -> set[str]:
        """The responders among these with a socket open somewhere (none when Redis is down)."""
        ids = list(responder_ids)
        if not ids:
            return set()
        keys = [self._key(r) for r in ids]
        try:
            if isinstance(self.redis, RedisCluster):
                counts = await self.redis.mget_nonatomic(keys)
            else:
                counts = await self.redis.mget(keys)
        except UNAVAILABLE as exc:
            log.warning("socket presence unknown (Redis): %s", exc)
            return set()
        return {r for r, c in zip(ids, counts, strict=True) if c is not None and int(c) > 0}
