"""Carrying frames to whichever API worker holds the socket: one shard channel plus a local registry.

Every worker subscribes to one shard channel (`SSUBSCRIBE`, see `core.shard_pubsub`) that carries
both responder frames (addressed by responder id) and dispatcher events (for every console). One
channel is one slot, so on a cluster it costs one shard and one connection per worker, and a
failover or a resharding moves it as a whole. Why not a channel per worker: the frames are few (an
incident's alerts and events), so each worker filtering all of them is cheap, while addressing a
worker would need a routing table of who holds which socket, racing with phones that reconnect.
Publishing is fire-and-forget by design: Postgres already holds every alert, and a responder who
was not connected anywhere gets it from there on connect.

Publishing never raises: a frame that cannot be published (Redis down, a cluster failing over) waits
in an outbox, in order, and goes out when Redis answers again, so a committed change is never
turned into an error for whoever made it (a phone's accept must still reach the dispatchers).
Frames published while this worker's subscription was down never arrive here, so every time the
relay is subscribed again (by this loop, after an outage or a failover, or by redis-py reconnecting
underneath) each attached socket is asked to `resync`: to fetch from Postgres what it may have
missed.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import defaultdict, deque
from typing import Any, Protocol

from redis.exceptions import RedisClusterException, RedisError

from core.redis import REDIS_DOWN, Keys, RedisClient
from core.shard_pubsub import ShardSubscription, Subscribed

log = logging.getLogger(__name__)
OUTBOX_LIMIT = 10_000
"""Most frames kept while Redis is down; beyond it the oldest go (Postgres and `resync` still
have them)."""
OUTBOX_RETRY_S = 0.5
NOT_PUBLISHED: tuple[type[Exception], ...] = (RedisError, RedisClusterException)
"""Whatever stops a publication (down, loading, a cluster failing over, a slot not covered yet):
the frame waits in the outbox."""


class Connection(Protocol):
    async def send(self, frame: dict[str, Any]) -> None: ...

    async def resync(self) -> None:
        """Send again, from the record, what the socket may have missed while the relay was down."""


class Fanout:
    """This worker's sockets, and the relay that feeds them from every worker's publications."""

    def __init__(self, redis: RedisClient, keys: Keys) -> None:
        self.redis = redis
        self.channel = keys("ch", "fanout")
        self.responders: dict[str, set[Connection]] = defaultdict(set)
        self.dispatchers: set[Connection] = set()
        self.ready = asyncio.Event()
        self.outbox: deque[str] = deque()
        self._queued = asyncio.Event()
        self._relayed_before = False
        self._tasks: set[asyncio.Task[None]] = set()

    # --- publishing (any worker) ------------------------------------------------------------
    async def to_responder(self, responder_id: str, frame: dict[str, Any]) -> None:
        await self._publish(json.dumps({"to": responder_id, "frame": frame}))

    async def to_dispatchers(self, frame: dict[str, Any]) -> None:
        await self._publish(json.dumps({"frame": frame}))

    async def _publish(self, data: str) -> None:
        """Publish now, or queue behind frames already waiting (order kept); never raises."""
        if not self.outbox:
            try:
                await self.redis.spublish(self.channel, data)
                return
            except NOT_PUBLISHED as exc:
                log.warning("publishing deferred until Redis answers: %s", exc)
        if len(self.outbox) >= OUTBOX_LIMIT:
            self.outbox.popleft()
            log.warning("outbox full: the oldest frame is dropped (Postgres keeps the record)")
        self.outbox.append(data)
        self._queued.set()

    async def drain_outbox(self) -> None:
        """Publish queued frames in order until cancelled, retrying while Redis is down."""
        while True:
            await self._queued.wait()
            while self.outbox:
                try:
                    await self.redis.spublish(self.channel, self.outbox[0])
                except NOT_PUBLISHED:
                    await asyncio.sleep(OUTBOX_RETRY_S)
                    continue
                self.outbox.popleft()
            self._queued.clear()

    # --- local registry ---------------------------------------------------------------------
    def attach_responder(self, responder_id: str, conn: Connection) -> None:
        self.responders[responder_id].add(conn)

    def detach_responder(self, responder_id: str, conn: Connection) -> None:
        conns = self.responders.get(responder_id)
        if conns is not None:
            conns.discard(conn)
            if not conns:
                del self.responders[responder_id]

    def connected_responders(self) -> int:
        return len(self.responders)

    async def _deliver(self, targets: list[Connection], frame: dict[str, Any]) -> None:
        results = await asyncio.gather(*(c.send(frame) for c in targets), return_exceptions=True)
        for result in results:
            if isinstance(result, Exception):
                log.debug("dropping a frame for a closing socket: %s", result)

    def _resync_all(self) -> None:
        """Ask every attached socket to catch up from the record (in the background: the relay
        keeps reading meanwhile)."""
        targets = [c for conns in self.responders.values() for c in conns] + list(self.dispatchers)
        log.info("relay subscribed again: resyncing %d sockets", len(targets))
        for conn in targets:
            task = asyncio.create_task(conn.resync())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _on_message(self, data: str) -> None:
        payload = json.loads(data)
        if "to" in payload:
            targets = list(self.responders.get(payload["to"], ()))
            if targets:
                await self._deliver(targets, payload["frame"])
        else:
            await self._deliver(list(self.dispatchers), payload["frame"])

    def _subscribed(self, confirmation: Subscribed) -> None:
        """Redis confirmed the subscription. Any confirmation but the very first of this worker
        (this loop subscribing again after an outage or a failover, or redis-py reconnecting
        underneath) follows a gap in which frames were lost: the sockets catch up."""
        if confirmation.again or self._relayed_before:
            self._resync_all()
        self._relayed_before = True
        self.ready.set()

    async def run(self) -> None:
        """Relay until cancelled; resubscribes after a Redis outage, and drains the outbox."""
        drain = asyncio.create_task(self.drain_outbox())
        try:
            await self._relay()
        finally:
            drain.cancel()

    async def _relay(self) -> None:
        while True:
            try:
                async with ShardSubscription(self.redis, self.channel) as subscription:
                    async for item in subscription.items():
                        if isinstance(item, Subscribed):
                            self._subscribed(item)
                            continue
                        try:
                            await self._on_message(item)
                        except Exception:  # one bad frame must not stop the relay for everyone
                            log.exception("could not relay a frame")
            except asyncio.CancelledError:
                raise
            except REDIS_DOWN as exc:  # expected during an outage or a failover: no traceback
                log.warning("pub/sub relay lost Redis (%s); resubscribing", exc)
            except Exception:
                log.exception("pub/sub relay lost Redis; resubscribing")
            self.ready.clear()
            await asyncio.sleep(1.0)
