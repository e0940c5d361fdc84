"""Carrying frames to whichever API worker holds the socket: Redis pub/sub plus a local registry.

Each worker subscribes to two channels: one for responder frames (addressed by responder id) and
one for dispatcher events (broadcast). Publishing is fire-and-forget by design: Postgres already
holds every alert, and a responder who was not connected anywhere gets it from there on connect.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from redis.asyncio import Redis

from core.redis import Keys

log = logging.getLogger(__name__)


class Connection(Protocol):
    async def send(self, frame: dict[str, Any]) -> None: ...


class Fanout:
    """This worker's sockets, and the relay that feeds them from every worker's publications."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.responder_channel = keys("ch", "responders")
        self.dispatch_channel = keys("ch", "dispatch")
        self.responders: dict[str, set[Connection]] = defaultdict(set)
        self.dispatchers: set[Connection] = set()
        self.ready = asyncio.Event()

    # --- publishing (any worker) ------------------------------------------------------------
    async def to_responder(self, responder_id: str, frame: dict[str, Any]) -> None:
        await self.redis.publish(self.responder_channel, json.dumps({"to": responder_id, "frame": frame}))

    async def to_dispatchers(self, frame: dict[str, Any]) -> None:
        await self.redis.publish(self.dispatch_channel, json.dumps(frame))

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

    async def _on_message(self, channel: str, data: str) -> None:
        payload = json.loads(data)
        if channel == self.responder_channel:
            targets = list(self.responders.get(payload["to"], ()))
            if targets:
                await self._deliver(targets, payload["frame"])
        else:
            await self._deliver(list(self.dispatchers), payload)

    async def run(self, on_connected: Callable[[], Awaitable[None]] | None = None) -> None:
        """Relay until cancelled; resubscribes after a Redis outage."""
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.responder_channel, self.dispatch_channel)
                self.ready.set()
                if on_connected is not None:
                    await on_connected()
                async for message in pubsub.listen():
                    if message["type"] == "message":
                        await self._on_message(message["channel"], message["data"])
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("pub/sub relay lost Redis; resubscribing")
                self.ready.clear()
                await asyncio.sleep(1.0)
            finally:
                await pubsub.aclose()
