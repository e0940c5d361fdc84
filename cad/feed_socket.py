"""The feedback as a websocket: a centre that prefers subscribe/notify (NENA's companion standard
uses WebSocket) listens on `/v1/ws/cad?subscription=<id>` instead of receiving POSTs.

The socket carries the same events as the POSTs to that subscription (its own outbox rows), each
frame the POST body plus `cursor`. Reconnecting with `?after=<last cursor>` replays what was written
since. Rows are read from PostgreSQL every `cad_poll_s`: any worker's writes reach any worker's
sockets without a relay. Outbox ids are taken at insert, not at commit, so each read looks back
`LOOK_BACK` ids for rows that committed late and the socket skips what it already sent; within an
incident, `seq` n+1 never commits before n (`cad.outbox`), so no incident's events are reordered.
After a reconnect the look-back may repeat events: a centre drops a (incident_id, seq) it has.
The socket only reads: whether the centre took a frame is not known, so POST delivery stays the
at-least-once path and the socket never marks a row delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any

from fastapi import APIRouter, Query, WebSocket, WebSocketDisconnect
from sqlalchemy import func, select

from cad.outbox_models import CadOutbox, CadSubscription
from core.auth import Role
from core.db import Database
from dispatch.ws import admit

router = APIRouter(tags=["websockets"])
log = logging.getLogger(__name__)
LOOK_BACK = 1000
PAGE = 500


class FeedCursor:
    """What one socket has sent: the newest row id, and the (incident, seq) pairs near it."""

    def __init__(self, after: int) -> None:
        self.after = after
        self.sent: dict[tuple[str, int], int] = {}  # (incident, seq) -> row id

    def fresh(self, rows: list[CadOutbox]) -> list[dict[str, Any]]:
        """The frames of `rows` not sent yet (ordered by id, so each incident's by seq)."""
        frames = []
        for row in rows:
            key = (str(row.incident_id), row.seq)
            if key in self.sent:
                continue
            self.sent[key] = row.id
            self.after = max(self.after, row.id)
            frames.append({**row.body, "cursor": row.id})
        if len(self.sent) > 4 * LOOK_BACK:  # keep the memory bounded: only what a look-back may repeat
            self.sent = {k: i for k, i in self.sent.items() if i > self.after - 2 * LOOK_BACK}
        return frames


async def _rows(db: Database, subscription_id: uuid.UUID, after: int) -> list[CadOutbox]:
    async with db.sessions() as session:
        query = (
            select(CadOutbox)
            .where(CadOutbox.subscription_id == subscription_id, CadOutbox.id > after - LOOK_BACK)
            .order_by(CadOutbox.id)
            .limit(PAGE + LOOK_BACK)
        )
        return list((await session.execute(query)).scalars())


async def _own(db: Database, agency: str | None, subscription_id: uuid.UUID) -> int | None:
    """The newest row id of the agency's own subscription (0 when it has none), or None."""
    async with db.sessions() as session:
        owned = await session.scalar(
            select(CadSubscription.id).where(
                CadSubscription.id == subscription_id, CadSubscription.agency == agency
            )
        )
        if owned is None:
            return None
        newest = await session.scalar(
            select(func.coalesce(func.max(CadOutbox.id), 0)).where(
                CadOutbox.subscription_id == subscription_id
            )
        )
        return int(newest or 0)


async def _feed(
    websocket: WebSocket, db: Database, subscription_id: uuid.UUID, cursor: FeedCursor, poll_s: float
) -> None:
    while True:
        try:
            rows = await _rows(db, subscription_id, cursor.after)
        except Exception:  # PostgreSQL away for a moment: the next read catches up
            log.warning("cad feed: could not read the outbox", exc_info=True)
            rows = []
        for frame in cursor.fresh(rows):
            await websocket.send_json(frame)
        await asyncio.sleep(poll_s)


@router.websocket("/v1/ws/cad")
async def cad_socket(
    websocket: WebSocket, subscription: uuid.UUID, after: int | None = Query(None, ge=0, le=2**63 - 1)
) -> None:
    """A centre's feedback, live; `after` (a frame's `cursor`) replays what came since it."""
    principal = await admit(websocket, {Role.cad})
    if principal is None:
        return
    db: Database = websocket.app.state.db
    newest = await _own(db, principal.agency, subscription)
    if newest is None:
        await websocket.close(code=4404, reason=f"subscription {subscription} is not this centre's")
        return
    cursor = FeedCursor(newest if after is None else after)
    if after is not None:  # what came since `after`, not the look-back before it
        seen = await _rows(db, subscription, after)
        cursor.sent.update({(str(r.incident_id), r.seq): r.id for r in seen if r.id <= after})
    feed = asyncio.create_task(
        _feed(websocket, db, subscription, cursor, websocket.app.state.settings.cad_poll_s)
    )
    try:
        while True:  # the centre only listens; whatever it sends is ignored
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
    except WebSocketDisconnect:
        pass
    finally:
        feed.cancel()
        with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
            await feed
