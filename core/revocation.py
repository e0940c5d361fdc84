"""Closing the sockets of a revoked token, on every worker, within seconds.

A socket is authenticated once, at the handshake; revoking its token later (DELETE /v1/tokens/{id},
`dispatch token revoke`, a responder's token rotation or deactivation) must still cut it off, or a
lost phone keeps receiving exact addresses. Whoever revokes announces the token ids on a Redis
channel after the commit; every worker's `SocketGuard` listens and closes its sockets opened with
those tokens (close code 4401 and a reason). Pub/sub is fire-and-forget (a worker that was
resubscribing misses the message), so each worker also re-checks the tokens of all its sockets
against PostgreSQL every `ws_token_recheck_s` in one query: a missed announcement costs at most
that long, never a socket that lives on.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
import weakref
from collections.abc import Iterable

from redis.asyncio import Redis
from sqlalchemy import select
from starlette.websockets import WebSocket, WebSocketState

from core.auth import ApiToken
from core.db import Database
from core.metrics import SOCKETS_CLOSED_REVOKED
from core.redis import Keys

log = logging.getLogger(__name__)
REVOKED_CLOSE_CODE = 4401
REVOKED_REASON = "token revoked"


def revocation_channel(keys: Keys) -> str:
    return keys("ch", "revoked")


async def announce_revoked(redis: Redis, keys: Keys, token_ids: Iterable[uuid.UUID]) -> None:
    """Tell every worker to close the sockets of these tokens (call after the commit)."""
    ids = [str(t) for t in token_ids]
    if not ids:
        return
    try:
        await redis.publish(revocation_channel(keys), json.dumps(ids))
    except Exception:  # Redis down: the periodic re-check closes the sockets instead
        log.warning("revocation of %d token(s) not announced; sockets close at the next re-check", len(ids))


class SocketGuard:
    """This worker's sockets by token id, closed when their token is revoked."""

    def __init__(self, redis: Redis, keys: Keys, db: Database, recheck_s: float) -> None:
        self.redis, self.channel, self.db, self.recheck_s = redis, revocation_channel(keys), db, recheck_s
        # Weak: a socket that ended is dropped with its handler, nothing to unregister by hand.
        self.sockets: dict[uuid.UUID, weakref.WeakSet[WebSocket]] = {}

    def watch(self, token_id: uuid.UUID | None, websocket: WebSocket) -> None:
        """Remember an accepted socket; the start-up admin token (no id) cannot be revoked."""
        if token_id is not None:
            self.sockets.setdefault(token_id, weakref.WeakSet()).add(websocket)

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

    async def _listen(self) -> None:
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                async for message in pubsub.listen():
                    if message["type"] == "message":
                        await self.close_for(uuid.UUID(t) for t in json.loads(message["data"]))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("revocation channel lost Redis; resubscribing", exc_info=True)
                await asyncio.sleep(1.0)
            finally:
                await pubsub.aclose()

    async def _recheck_forever(self) -> None:
        while True:
            await asyncio.sleep(self.recheck_s)
            try:
                await self.recheck()
            except Exception:  # the database is down: try again next round
                log.warning("token re-check of open sockets failed", exc_info=True)

    async def run(self) -> None:
        """Listen for announcements and re-check periodically, until cancelled."""
        await asyncio.gather(self._listen(), self._recheck_forever())
