"""Redis plumbing: one client per process (a pool on a single server, a pool per node on a
cluster), and key naming."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

import hiredis
import redis as sync_redis
from redis.asyncio import BlockingConnectionPool, Connection, Redis, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.client import NEVER_DECODE
from redis.cluster import LoadBalancingStrategy
from redis.exceptions import ClusterDownError, DataError, SlotNotCoveredError, TryAgainError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

if TYPE_CHECKING:
    from core.config import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")
MAX_CONNECTIONS = 64
REDIS_DOWN: tuple[type[Exception], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    ClusterDownError,
    TryAgainError,
    SlotNotCoveredError,
)
"""What a command raises when Redis cannot be reached (down, restarting, or still loading), or a
cluster cannot serve the key's slot for now (a primary failing over, a slot migrating)."""
FAN_OUT_MAX = 16  # calls in flight at once in one fan-out: a cluster client has 64 connections a node
RECONNECT_ATTEMPTS = 2
"""Times a command is sent again on a fresh connection after a connection error."""
RedisClient = Redis | RedisCluster
"""What the stores are given: one server, or a cluster (`connect_redis` decides which)."""
COMMAND_TIMEOUT_S = 5.0
"""Longest wait for a connection, for Redis to accept one, and for a reply, on a single server and
on every node of a cluster alike: a hung server or node (a stopped process, a machine gone silent
behind a NAT) must fail a request, not hold it forever. No command of the service runs longer
than a few milliseconds; the shard subscriptions wait with their own timeout."""


async def gather_limited(calls: Iterable[Awaitable[T]], limit: int = FAN_OUT_MAX) -> list[T]:
    """`asyncio.gather` with at most `limit` calls in flight. A province's batch or sweep touches
    hundreds of regions' slots; sent all at once they would take more connections than a cluster
    client's pool per node holds (it refuses, it does not queue)."""
    gate = asyncio.Semaphore(limit)

    async def one(call: Awaitable[T]) -> T:
        async with gate:
            return await call

    return list(await asyncio.gather(*map(one, calls)))


class HiredisPackingConnection(Connection):
    """A connection whose commands are packed by hiredis in C, as redis-py's synchronous client
    already does. The asyncio client packs in Python at ~1 µs per argument: 0.15 ms of a 2 km
    nearby query, whose one MGET names ~150 cells. Same rules as redis-py's own hiredis packer.
    """

    def pack_command(self, *args: Any) -> list[bytes]:
        if isinstance(args[0], str):  # a command named with its subcommand, e.g. "CONFIG GET"
            args = (*args[0].encode().split(), *args[1:])
        elif b" " in args[0]:
            args = (*args[0].split(), *args[1:])
        try:
            return [hiredis.pack_command(args)]
        except TypeError:  # hiredis takes no bytearray: copy those and try once more
            args = tuple(bytes(a) if isinstance(a, bytearray | memoryview) else a for a in args)
        try:
            return [hiredis.pack_command(args)]
        except TypeError as exc:  # bool, None, ...: refused, as the Python packer refuses them
            raise DataError(str(exc)) from exc


def is_cluster(url: str, timeout_s: float = COMMAND_TIMEOUT_S) -> bool | None:
    """Whether the server at `url` is a node of a Redis Cluster (`INFO cluster`), or None when it
    cannot be asked (down at start-up)."""
    try:
        with sync_redis.Redis.from_url(url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s) as r:
            return bool(r.info("cluster").get("cluster_enabled"))
    except (sync_redis.ConnectionError, sync_redis.TimeoutError):
        return None


def connect_redis(
    url: str,
    max_connections: int = MAX_CONNECTIONS,
    *,
    cluster: bool | None = None,
    read_from_replicas: bool = False,
) -> RedisClient:
    """A client for the single server or the cluster at `url`; responses decoded to `str`.

    `cluster` None asks the server (`is_cluster`); a server that cannot be asked is taken for a
    single one (log says so: set `DISPATCH_REDIS_CLUSTER` to be sure). On a cluster `url` may name
    any node: the client learns the others and the slots from it.
    """
    if cluster is None:
        told = is_cluster(url)
        if told is None:
            log.warning("Redis at %s does not answer: taken for a single server", url.split("@")[-1])
        cluster = bool(told)
    if cluster:
        return connect_cluster(url, max_connections, read_from_replicas=read_from_replicas)
    return connect_single(url, max_connections)


def connect_configured(settings: Settings, max_connections: int = MAX_CONNECTIONS) -> RedisClient:
    """The client every process of the service makes (app workers, the command line), as the
    settings say: `redis_url`, `redis_cluster`, `redis_read_from_replicas`."""
    return connect_redis(
        settings.redis_url,
        max_connections,
        cluster=settings.redis_cluster,
        read_from_replicas=settings.redis_read_from_replicas,
    )


CLUSTER_CONNECTIONS_PER_NODE = 512
"""Least pool per cluster node. redis-py's cluster pool refuses a command past its size
(`MaxConnectionsError`) where the single server's pool waits: a province's gateway batch, its
fixes spread over hundreds of regions and so hundreds of slots, ran out at 64
(tests/integration/test_live_store_province.py). Connections are opened only when needed."""


CLUSTER_RETRIES = 6
"""Times a cluster command is sent again after a connection error, a timeout or a slot without a
serving primary: enough to ride out a failover (2-5 s with a replica)."""


def connect_cluster(
    url: str, max_connections: int, *, read_from_replicas: bool, timeout_s: float = COMMAND_TIMEOUT_S
) -> RedisCluster:
    """A cluster client: a bounded pool per node, commands routed by slot, MOVED/ASK followed and
    the slot map refreshed after a failover. `read_from_replicas` spreads reads over replicas
    (round robin over a slot's primary and replicas; writes and scripts go to the primary).

    The same timeouts as a single server's (`COMMAND_TIMEOUT_S`): a hung node fails each attempt
    within `timeout_s`, and a command within its `CLUSTER_RETRIES` retries (tested)."""
    return RedisCluster.from_url(
        url,
        decode_responses=True,
        max_connections=max(max_connections, CLUSTER_CONNECTIONS_PER_NODE),
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), CLUSTER_RETRIES),
        socket_connect_timeout=timeout_s,
        socket_timeout=timeout_s,
        require_full_coverage=False,
        load_balancing_strategy=LoadBalancingStrategy.ROUND_ROBIN if read_from_replicas else None,
    )


def connect_single(
    url: str, max_connections: int = MAX_CONNECTIONS, *, timeout_s: float = COMMAND_TIMEOUT_S
) -> Redis:
    """A client over a shared, bounded pool; responses decoded to `str`.

    The pool blocks (up to 5 s) when every connection is busy instead of failing: a burst of
    websocket frames must queue for Redis, not lose updates to "too many connections".

    A command that meets a dead connection is sent again on a fresh one (`RECONNECT_ATTEMPTS`, a
    short backoff): after Redis restarts every pooled connection is dead, and without this each
    of them failed one command (a phone's accept, an event's publication) before being replaced.
    When Redis is really down, the command still fails within a fraction of a second; when it hangs
    (accepts, never answers), each attempt within `timeout_s`.
    """
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=timeout_s,
        decode_responses=True,
        health_check_interval=30,
        connection_class=HiredisPackingConnection,
        retry=Retry(ExponentialBackoff(cap=0.2, base=0.02), RECONNECT_ATTEMPTS),
        socket_connect_timeout=timeout_s,
        socket_timeout=timeout_s,
    )
    return Redis(connection_pool=pool)


class ReadConnection:
    """A connection of its own, outside the pool, for one hot read: a nearby query's `MGET`.

    Why: through the pooled client a command costs ~0.15 ms before Redis sees it (the pool's
    condition and timeout, and on Python 3.11 a task per write for the socket timeout), a tenth of
    a 2 km query. Here a command is one lock and one overall timeout. A read that finds the
    connection busy (another query in flight) goes through the pool instead of waiting. A timeout,
    an error or a cancellation mid-reply drops the connection (redis-py disconnects), so no late
    reply is ever read as the next one; the next read reconnects, and a read that finds the
    connection broken (Redis restarted) is sent again through the pool and its retries. Replies are
    never decoded.

    A single server's: a cluster is read on a connection per node, each command sent where the
    cluster's slot map says (`core.cluster_reads.ClusterReads`).
    """

    def __init__(self, redis: Redis, timeout_s: float = COMMAND_TIMEOUT_S) -> None:
        if not isinstance(redis, Redis):
            raise TypeError("ReadConnection reads a single server: a cluster client routes by slot itself")
        pool = redis.connection_pool
        self._redis = redis
        self._connection: Connection = pool.connection_class(
            **{**pool.connection_kwargs, "socket_timeout": None}
        )
        self._lock = asyncio.Lock()
        self._timeout_s = timeout_s

    async def execute(self, *args: Any) -> Any:
        if not self._lock.locked():
            try:
                async with self._lock, asyncio.timeout(self._timeout_s):
                    command = self._connection.pack_command(*args)
                    await self._connection.send_packed_command(command, check_health=False)
                    return await self._connection.read_response(disable_decoding=True)
            except RedisConnectionError:
                pass  # dropped by now: the pool reconnects and retries
        return await self._redis.execute_command(*args, **{NEVER_DECODE: []})

    async def aclose(self) -> None:
        await self._connection.disconnect()


class Keys:
    """Builds namespaced Redis keys and channels so deployments (and test runs) never collide."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def __call__(self, *parts: object) -> str:
        return ":".join([self.prefix, *(str(p) for p in parts)])
