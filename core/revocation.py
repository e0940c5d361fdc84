"""Revocation reaches every worker within moments: its sockets close, its cached tokens go.

A socket is authenticated once, at the handshake, and an HTTP request is authenticated from this
worker's token cache (`core.token_cache`); revoking a token later (DELETE /v1/tokens/{id},
`dispatch token revoke`, a responder's token rotation or deactivation) must still cut both off, or
a lost phone keeps receiving exact addresses. Whoever revokes drops the ids from its own cache and
announces them on a Redis channel after the commit; every worker's `RevocationFeed` listens and
hands the ids to its listeners: the `SocketGuard` closes the sockets opened with those tokens
(close code 4401 and a reason), the token cache forgets them.

Pub/sub is fire-and-forget: a worker whose subscription was down (Redis restarted, a cluster node
failed over, the connection was killed) never gets what was announced meanwhile. So every time
the feed is subscribed again, whether by its own loop or by redis-py reconnecting underneath, the
listeners are told they may have missed some: the cache clears itself and the guard re-checks its
sockets at once. The guard also re-checks every `ws_token_recheck_s`, and the cache's entries
expire after `token_cache_ttl_s`, for a revocation nobody announced (Redis unreachable when it was
made, or a row edited by hand).

The channel is a shard channel (`core.shard_pubsub`, `SPUBLISH`/`SSUBSCRIBE`), the same way the
fan-out subscribes: on a cluster it costs one shard, not every node, and every way of losing the
subscription is loud — the node dies, the slot moves (a failover), or the connection goes silent
(found out by a PING) — so the listeners are always told when they may have missed something.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
import weakref
from collections.abc import Iterable, Sequence
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection
from starlette.websockets import WebSocket, WebSocketState

from core.auth import ApiToken, take_revoked
from core.db import Database
from core.metrics import REVOCATION_RESUBSCRIBED, SOCKETS_CLOSED_REVOKED
from core.redis import REDIS_DOWN, Keys, RedisClient
from core.shard_pubsub import ShardSubscription, Subscribed
from core.token_cache import TokenCache

log = logging.getLogger(__name__)
REVOKED_CLOSE_CODE = 4401
REVOKED_REASON = "token revoked"
RESUBSCRIBE_AFTER_S = 1.0


def revocation_channel(keys: Keys) -> str:
    return keys("ch", "revoked")


async def announce_revoked(
    redis: RedisClient, keys: Keys, token_ids: Iterable[uuid.UUID], cache: TokenCache | None = None
) -> None:
    """Tell every worker these tokens are revoked (call after the commit). `cache`, this worker's
    own, forgets them first: the caller's next request must not wait for its own announcement."""
    ids = list(token_ids)
    if not ids:
        return
    if cache is not None:
        cache.drop(ids)
    try:
        await redis.spublish(revocation_channel(keys), json.dumps([str(t) for t in ids]))
    except Exception:  # Redis down: the sockets' re-check and the cache's TTL cover it
        log.warning(
            "revocation of %d token(s) not announced; sockets close at the next re-check, other"
            " workers' cached entries expire within token_cache_ttl_s",
            len(ids),
        )


async def announce_session_revoked(connection: HTTPConnection, session: AsyncSession) -> None:
    """Announce what `session` revoked (after its commit), from the app serving `connection`."""
    state = connection.app.state
    await announce_revoked(state.redis, state.keys, take_revoked(session), state.token_cache)


class RevocationListener(Protocol):
    """What the feed hands announcements to."""

    async def revoked(self, token_ids: list[uuid.UUID]) -> None:
        """These tokens were revoked."""

    async def missed(self) -> None:
        """The subscription was down: announcements made meanwhile never arrived."""


class CacheListener:
    """The token cache as a listener: forget revoked tokens, forget everything after a gap."""

    def __init__(self, cache: TokenCache) -> None:
        self.cache = cache

    async def revoked(self, token_ids: list[uuid.UUID]) -> None:
        self.cache.drop(token_ids)

    async def missed(self) -> None:
        cleared = self.cache.clear()
        log.info("revocation feed subscribed again: %d cached token(s) forgotten", cleared)


class RevocationFeed:
    """This worker's subscription to the revocation channel, handing what it hears to listeners."""

    def __init__(self, redis: RedisClient, keys: Keys, listeners: Sequence[RevocationListener]) -> None:
        self.redis, self.channel, self.listeners = redis, revocation_channel(keys), tuple(listeners)
        self.subscribed = asyncio.Event()
        self._subscribed_before = False

    async def _revoked(self, token_ids: list[uuid.UUID]) -> None:
        for listener in self.listeners:
            await listener.revoked(token_ids)

    async def _missed(self) -> None:
        REVOCATION_RESUBSCRIBED.inc()
        for listener in self.listeners:
            try:
                await listener.missed()
            except Exception:  # the database is down for the guard's re-check: its timer retries
                log.warning("catching up after a revocation-feed gap failed", exc_info=True)

    async def run(self) -> None:
        """Listen until cancelled; subscribe again after Redis was lost, telling the listeners."""
        while True:
            try:
                async with ShardSubscription(self.redis, self.channel) as subscription:
                    async for item in subscription.items():
                        if isinstance(item, Subscribed):
                            if item.again or self._subscribed_before:
                                await self._missed()
                            self._subscribed_before = True
                            self.subscribed.set()
                            continue
                        await self._revoked([uuid.UUID(t) for t in json.loads(item)])
            except asyncio.CancelledError:
                raise
            except REDIS_DOWN as exc:  # expected during an outage: once a second, no traceback
                log.warning("revocation feed lost Redis (%s); subscribing again", exc)
            except Exception:
                log.warning("revocation feed failed; subscribing again", exc_info=True)
            finally:
                self.subscribed.clear()
            await asyncio.sleep(RESUBSCRIBE_AFTER_S)


class SocketGuard:
    """This worker's sockets by token id, closed when their token is revoked."""

    def __init__(self, db: Database, recheck_s: float) -> None:
        self.db, self.recheck_s = db, recheck_s
        # Weak: a socket that ended is dropped with its handler, nothing to unregister by hand.
        self.sockets: dict[uuid.UUID, weakref.WeakSet[WebSocket]] = {}

    def watch(self, token_id: uuid.UUID | None, websocket: WebSocket) -> None:
        """Remember an accepted socket; the start-up admin token (no id) cannot be revoked."""
        if token_id is not None:
            self.sockets.setdefault(token_id, weakref.WeakSet()).add(websocket)

    async def revoked(self, token_ids: list[uuid.UUID]) -> None:
        await self.close_for(token_ids)

    async def missed(self) -> None:
        await self.recheck()

    async def close_for(self, token_ids: Iterable[uuid.UUID]) -> int:
        """Close every open socket of these tokens; returns how many were closed."""
        closed = 0
        for token_id in token_ids:
            for websocket in list(self.sockets.pop(token_id, ())):
                if websocket.application_state is not WebSocketState.CONNECTED:
                    continue
                try:
                    await websocket.close(code=REVOKED_CLOSE_CODE, reason=REVOKED_REASON)
                    closed += 1
                except Exception as exc:  # already going away
                    log.debug("socket of a revoked token was closing anyway: %s", exc)
        if closed:
            SOCKETS_CLOSED_REVOKED.inc(closed)
            log.info("closed %d socket(s) of revoked tokens", closed)
        return closed

    async def recheck(self) -> int:
        """One query for the tokens of every open socket of this worker; close the revoked ones."""
        self.sockets = {t: s for t, s in self.sockets.items() if s}
        if not self.sockets:
            return 0
        query = select(ApiToken.id).where(
            ApiToken.id.in_(list(self.sockets)), ApiToken.revoked_at.is_not(None)
        )
        async with self.db.sessions() as session:
            revoked = (await session.execute(query)).scalars().all()
        return await self.close_for(revoked)

    async def run(self) -> None:
        """Re-check periodically, until cancelled (announcements come through the `RevocationFeed`)."""
        while True:
            await asyncio.sleep(self.recheck_s)
            try:
                await self.recheck()
            except Exception:  # the database is down: try again next round
                log.warning("token re-check of open sockets failed", exc_info=True)
