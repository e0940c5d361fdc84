"""A subscription to one shard channel (`SSUBSCRIBE`, Redis 7), on a single server or a cluster.

Why sharded pub/sub: on a cluster a plain `PUBLISH` is copied over the cluster bus to every node,
so each message costs every shard; a shard channel lives in its name's slot and only the shard that
owns that slot carries it (`SPUBLISH`). A single Redis 7 serves the same commands, so one code path
serves both, and publishing is just `redis.spublish(channel, data)` on either client.

Why not redis-py's `ClusterPubSub`: it reads shard messages by polling each node's subscription in
turn, with a timeout on each, and moves subscriptions between nodes by itself. One channel lives on
one node, so here the subscription is one connection of its own to that node, and every way of
losing it is loud: the node dies (the read fails) or the slot moves to another node (a failover, a
resharding: Redis sends `sunsubscribe`). The caller then subscribes again, to the slot's new owner,
and knows that it must catch up on what it missed. When redis-py reconnects underneath and
subscribes again by itself (a single server restarted), the new confirmation says so: `Subscribed`
comes again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import TracebackType

from redis.asyncio import ConnectionPool, Redis, RedisCluster
from redis.asyncio.client import PubSub
from redis.exceptions import ConnectionError as RedisConnectionError

from core.redis import RedisClient


@dataclass(frozen=True)
class Subscribed:
    """Redis confirmed the subscription: messages published from now on arrive."""

    again: bool
    """True for every confirmation after the first: messages published in between were lost."""


class SlotMoved(RedisConnectionError):
    """The channel's slot went to another node (Redis ended the subscription): subscribe again."""


class ShardSubscription:
    """`async with ShardSubscription(redis, channel) as sub: async for item in sub.items(): ...`
    yields `Subscribed` and the data of each message, until the subscription is lost (raises)."""

    def __init__(self, redis: RedisClient, channel: str) -> None:
        self.redis, self.channel = redis, channel
        self._node_client: Redis | None = None
        self._pubsub: PubSub | None = None

    async def __aenter__(self) -> ShardSubscription:
        # Ask the channel's slot first: a cluster client that met a dead node learns the slot's new
        # owner here (it refreshes its map on the error), and a dead Redis fails fast.
        await self.redis.exists(self.channel)
        if isinstance(self.redis, RedisCluster):
            node = self.redis.get_node_from_key(self.channel)
            pool = ConnectionPool(connection_class=node.connection_class, **node.connection_kwargs)
            self._node_client = Redis(connection_pool=pool)
            self._pubsub = self._node_client.pubsub()
        else:
            self._pubsub = self.redis.pubsub()
        await self._pubsub.ssubscribe(self.channel)
        return self

    async def items(self) -> AsyncIterator[Subscribed | str]:
        assert self._pubsub is not None, "use ShardSubscription in `async with`"
        confirmed = False
        async for message in self._pubsub.listen():
            kind = message["type"]
            if kind == "smessage":
                yield message["data"]
            elif kind == "ssubscribe":
                yield Subscribed(again=confirmed)
                confirmed = True
            elif kind == "sunsubscribe":  # never asked for: the slot moved
                raise SlotMoved(f"shard channel {self.channel} left this node")

    async def __aexit__(
        self, _type: type[BaseException] | None, _exc: BaseException | None, _tb: TracebackType | None
    ) -> None:
        if self._pubsub is not None:
            await self._pubsub.aclose()
        if self._node_client is not None:
            await self._node_client.aclose()
