"""The live store's hot read on a Redis Cluster: `MGET`s of pages on connections of its own, one per
node, as `core.redis.ReadConnection` does on a single server.

Why: through `RedisCluster.execute_command` a command costs ~0.2 ms before Redis sees it (the node
lookup, the pool, the retry and redirect machinery), so a nearby query that Redis answers in 40 µs
took half again as long as on a single server. Here a node's share of a read (one `MGET` per slot
it serves) is one lock, the commands sent together and their replies read in order: one round
trip per node, the nodes in parallel. Replies are never decoded.

Correctness is the cluster client's: the node of a slot is looked up in its slot map at every
read, and anything unexpected on a node's connection (a `MOVED`/`ASK`/`TRYAGAIN` reply after a
resharding or a failover, a connection error, a timeout) or a connection busy with another read
sends that node's share through `execute_command`, which follows redirects, refreshes the slot map
and retries. So a moved slot costs one slower read, never a wrong or missing answer. A connection
that failed mid-reply is dropped, never read again, so no late reply is ever taken for the next.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import count

from redis.asyncio import RedisCluster
from redis.asyncio.cluster import ClusterNode
from redis.client import NEVER_DECODE

from core.redis import HiredisPackingConnection, gather_limited

Pages = list[bytes | None]
"""One `MGET`'s reply: each key's value, None where missing."""


@dataclass
class _Link:
    """A connection of its own to one node, and the lock that keeps it to one read at a time."""

    connection: HiredisPackingConnection
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class ClusterReads:
    """`MGET`s grouped by slot, sent to each slot's node on a connection of its own.

    A slot is read from its primary, or, when the cluster client reads from replicas (the
    `redis_read_from_replicas` setting), from its primary and replicas in turn (the node's
    connection settings carry `READONLY`).
    """

    def __init__(self, cluster: RedisCluster, timeout_s: float = 5.0) -> None:
        if not isinstance(cluster, RedisCluster):
            raise TypeError("ClusterReads reads a cluster: a single server has core.redis.ReadConnection")
        self._cluster = cluster
        self._timeout_s = timeout_s
        self._replicas = cluster.load_balancing_strategy is not None
        self._turns = count()
        self._links: dict[str, _Link] = {}

    async def mget(self, keys_by_slot: Mapping[int, Sequence[bytes]]) -> list[Pages]:
        """One `MGET` per slot of the keys listed under it; the replies in the mapping's order."""
        if not self._cluster.nodes_manager.slots_cache:
            # learnt before any fallback: several first uses at once, each learning the slots,
            # break each other's connections (redis-py 8.1)
            await self._cluster.initialize()
        slots = list(keys_by_slot)
        shares: dict[ClusterNode | None, list[int]] = {}
        turn = next(self._turns) if self._replicas else 0
        for i, slot in enumerate(slots):
            shares.setdefault(self._node_of(slot, turn), []).append(i)
        replies: list[Pages] = [[] for _ in slots]

        async def read(node: ClusterNode | None, rows: list[int]) -> None:
            groups = [keys_by_slot[slots[r]] for r in rows]
            for r, reply in zip(rows, await self._share(node, groups), strict=True):
                replies[r] = reply

        if len(shares) == 1:  # most queries: one node, no task to create
            await read(*next(iter(shares.items())))
        else:
            await asyncio.gather(*(read(node, rows) for node, rows in shares.items()))
        return replies

    def _node_of(self, slot: int, turn: int) -> ClusterNode | None:
        """The node the slot map names for a slot (None: not covered now, the cluster client
        decides)."""
        nodes = self._cluster.nodes_manager.slots_cache.get(slot)
        if not nodes:
            return None
        return nodes[turn % len(nodes)]

    async def _share(self, node: ClusterNode | None, groups: list[Sequence[bytes]]) -> list[Pages]:
        """A node's share of a read: on its own connection if free and well, else through the
        cluster client."""
        link = None if node is None else self._link(node)
        if link is not None and not link.lock.locked():
            async with link.lock:
                try:
                    async with asyncio.timeout(self._timeout_s):
                        return await _exchange(link.connection, groups)
                except BaseException as exc:
                    await link.connection.disconnect()  # replies may be left unread: never reuse them
                    if not isinstance(exc, Exception):
                        raise  # cancelled: the caller is gone
        return await gather_limited(
            self._cluster.execute_command("MGET", *keys, **{NEVER_DECODE: []}) for keys in groups
        )

    def _link(self, node: ClusterNode) -> _Link:
        link = self._links.get(node.name)
        if link is None:
            options = {**node.connection_kwargs, "socket_timeout": None}  # one overall timeout instead
            link = self._links[node.name] = _Link(HiredisPackingConnection(**options))
        return link

    async def aclose(self) -> None:
        for link in self._links.values():
            await link.connection.disconnect()
        self._links.clear()


async def _exchange(connection: HiredisPackingConnection, groups: list[Sequence[bytes]]) -> list[Pages]:
    """Every group's `MGET` sent at once, then the replies read in order (an error reply raises)."""
    packed = [part for keys in groups for part in connection.pack_command("MGET", *keys)]
    await connection.send_packed_command(packed, check_health=False)
    return [await connection.read_response(disable_decoding=True) for _ in groups]
