"""Carrying frames to whichever API worker holds the socket: Redis pub/sub plus a local registry.

Each worker subscribes to two channels: one for responder frames (addressed by responder id) and
one for dispatcher events (broadcast). Publishing is fire-and-forget by design: Postgres already
holds every alert, and a responder who was not connected anywhere gets it from there on connect.

Publishing never raises: a frame that cannot be published (Redis down) waits in an outbox, in
order, and goes out when Redis answers again, so a committed change is never turned into an error
for whoever made it (a phone's accept must still reach the dispatchers). Frames published while
this worker's subscription was down never arrive here, so every time the relay is subscribed
again (by this loop, or by redis-py reconnecting underneath) each attached socket is asked to
`resync`: to fetch from Postgres what it may have missed.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from redis.asyncio import Redis

from core.redis import REDIS_DOWN, Keys

log = logging.getLogger(__name__)
OUTBOX_LIMIT = 10_000
"""Most frames kept while Redis is down; beyond it the oldest go (Postgres and `resync` still
have them)."""
OUTBOX_RETRY_S = 0.5


class Connection(Protocol):
    async def send(self, frame: dict[str, Any]) -> None: ...

    async def resync(self) -> None:
        """Send again, from the record, what the socket may have missed while the relay was down."""


class Fanout:
    """This worker's sockets, and the relay that feeds them from every worker's publications."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.responder_channel = keys("ch", "responders")
        self.dispatch_channel = keys("ch", "dispatch")
        self.responders: dict[str, set[Connection]] = defaultdict(set)
        self.dispatchers: set[Connection] = set()
        self.ready = asyncio.Event()
        self.outbox: deque[tuple[str, str]] = deque()
        self._queued = asyncio.Event()
        self._relayed_before = False
        self._tasks: set[asyncio.Task[None]] = set()

    # --- publishing (any worker) ------------------------------------------------------------
    async def to_responder(self, responder_id: str, frame: dict[str, Any]) -> None:
        await self._publish(self.responder_channel, json.dumps({"to": responder_id, "frame": frame}))

    async def to_dispatchers(self, frame: dict[str, Any]) -> None:
        await self._publish(self.dispatch_channel, json.dumps(frame))

    async def _publish(self, channel: str, data: str) -> None:
        """Publish now, or queue behind frames already waiting (order kept); never raises."""
        if not self.outbox:
            try:
                await self.redis.publish(channel, data)
                return
            except REDIS_DOWN as exc:
                log.warning("publishing deferred until Redis answers: %s", exc)
        if len(self.outbox) >= OUTBOX_LIMIT:
            self.outbox.popleft()
            log.warning("outbox full: the oldest frame is dropped (Postgres keeps the record)")
        self.outbox.append((channel, data))
        self._queued.set()

    async def drain_outbox(self) -> None:
        """Publish queued frames in order until cancelled, retrying while Redis is down."""
        while True:
            await self._queued.wait()
            while self.outbox:
                channel, data = self.outbox[0]
                try:
                    await self.redis.publish(channel, data)
                except REDIS_DOWN:
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

    async def _reconnected(self, _connection: object) -> None:
        """redis-py reconnected the subscription by itself (and subscribed again): frames
        published meanwhile never came."""
        self._resync_all()

    async def _on_message(self, channel: str, data: str) -> None:
        payload = json.loads(data)
        if channel == self.responder_channel:
            targets = list(self.responders.get(payload["to"], ()))
            if targets:
                await self._deliver(targets, payload["frame"])
        else:
            await self._deliver(list(self.dispatchers), payload)

    async def run(self, on_connected: Callable[[], Awaitable[None]] | None = None) -> None:
        """Relay until cancelled; resubscribes after a Redis outage, and drains the outbox."""
        drain = asyncio.create_task(self.drain_outbox())
        try:
            await self._relay(on_connected)
        finally:
            drain.cancel()

    async def _relay(self, on_connected: Callable[[], Awaitable[None]] | None) -> None:
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.responder_channel, self.dispatch_channel)
                if self._relayed_before:  # subscribed again by this loop after an outage
                    self._resync_all()
                self._relayed_before = True
                if pubsub.connection is not None:
                    pubsub.connection.register_connect_callback(self._reconnected)
                self.ready.set()
                if on_connected is not None:
                    await on_connected()
                async for message in pubsub.listen():
                    if message["type"] == "message":
                        try:
                            await self._on_message(message["channel"], message["data"])
                        except Exception:  # one bad frame must not stop the relay for everyone
                            log.exception("could not relay a frame")
            except asyncio.CancelledError:
                raise
            except REDIS_DOWN as exc:  # expected during an outage: once a second, no traceback
                log.warning("pub/sub relay lost Redis (%s); resubscribing", exc)
                self.ready.clear()
                await asyncio.sleep(1.0)
            except Exception:
                log.exception("pub/sub relay lost Redis; resubscribing")
                self.ready.clear()
                await asyncio.sleep(1.0)
            finally:
                if pubsub.connection is not None:  # the connection goes back to the pool
                    pubsub.connection.deregister_connect_callback(self._reconnected)
                await pubsub.aclose()
