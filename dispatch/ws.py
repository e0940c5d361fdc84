"""Websockets: responders (locations in, alerts out, answers in) and dispatchers (live events).

A malformed frame gets an `error` frame and the socket stays open: binary, oversize, not JSON,
nested too deep for the parser. A store that is down gets an `error` frame naming it (503) and the
socket stays open too; the phone sends again. On every (re)connect the phone first gets every
pending unexpired alert from Postgres, then whatever the relay brings; frames are de-duplicated per
connection, so an alert arriving both ways is shown once. When the relay subscribes again after a
Redis outage it asks each socket to `resync`: a phone gets its pending alerts and accepted
incidents from Postgres again, a console the incident events logged since the last one it got.

Signing in: the client offers the subprotocols `["bearer", "<token>"]` (`Sec-WebSocket-Protocol`,
the one header a browser may set on a socket) and the server selects `bearer`. A token in the URL
(`?token=`) still works for old clients, but URLs end up in access logs (scrubbed there, see
`core.logging`). A socket whose token is revoked is closed with 4401 "token revoked" within
seconds on every worker (`core.revocation`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from datetime import UTC, datetime
from typing import Any, TypeVar

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import BaseModel, ValidationError
from starlette.websockets import WebSocketState

from core.auth import BEARER_SUBPROTOCOL, Principal, Role, authenticate_websocket, subprotocol_token
from core.outage import unavailable_store
from dispatch import alerts, events
from dispatch.channels.presence import REFRESH_S
from dispatch.context import DispatchContext
from dispatch.fanout import Connection
from dispatch.frames import error_frame, event_frame, incident_frame, reproject
from dispatch.schemas import AckFrame, ReceivedFrame, StatusFrame
from dispatch.service import DispatchError
from geo.crs import Crs
from responders.ingest import LocationRejected, ingest_location
from responders.observers import fix_observer
from responders.schemas import LocationUpdate

router = APIRouter(tags=["websockets"])
log = logging.getLogger(__name__)
FRAME_TYPES = "location, ack, status, received"
ONCE_PER_ALERT = ("alert", "incident", "cancel")
"""Frames a phone is sent at most once per alert on one connection, however many ways they come
(the relay, the replay on connect, a resync after an outage); an `incident` frame once per alert and
place, so a responder on the way hears when the emergency centre moves the patient."""
M = TypeVar("M", bound=BaseModel)


class ResponderConnection:
    """One phone's socket: sends in its datum, once per alert, and records each alert written as
    an attempt (only the phone's `received` frame is a delivery: a half-open socket takes writes)."""

    def __init__(self, websocket: WebSocket, ctx: DispatchContext, responder_id: uuid.UUID, crs: Crs) -> None:
        self.websocket, self.ctx, self.responder_id, self.crs = websocket, ctx, responder_id, crs
        self.sent_once: set[tuple[Any, ...]] = set()  # (frame type, alert id, place): see ONCE_PER_ALERT
        self.tasks: set[asyncio.Task[None]] = set()
        self.lock = asyncio.Lock()
        self.presence_due = time.monotonic() + REFRESH_S  # when to renew the socket count's expiry

    async def send(self, frame: dict[str, Any]) -> None:
        if frame["type"] in ONCE_PER_ALERT:
            key = (frame["type"], frame["alert_id"], frame.get("lat"), frame.get("lng"))
            if key in self.sent_once:
                return
            self.sent_once.add(key)
        async with self.lock:
            await self.websocket.send_json(reproject(frame, self.crs))
        if frame["type"] == "alert":
            task = asyncio.create_task(self._attempted(uuid.UUID(frame["alert_id"])))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _attempted(self, alert_id: uuid.UUID) -> None:
        try:
            async with self.ctx.db.sessions() as session:
                await alerts.record_socket_attempt(session, self.ctx, alert_id)
        except Exception:
            log.exception("could not record the socket attempt of alert %s", alert_id)

    async def resync(self) -> None:
        """After a relay outage: what Postgres says this phone should have (sent once each), and
        a `cancel` for every alert it was shown whose incident has closed since."""
        shown = [uuid.UUID(alert_id) for kind, alert_id, *_ in self.sent_once if kind == "alert"]
        try:
            async with self.ctx.db.sessions() as session:
                frames = await alerts.pending_frames(session, self.responder_id)
                frames += await alerts.cancel_frames(session, self.responder_id, shown)
            for frame in frames:
                await self.send(frame)
        except Exception:
            log.warning("could not resync responder %s", self.responder_id, exc_info=True)

    async def handle(self, raw: str) -> None:
        """Apply one frame; whatever goes wrong is answered with an `error` frame, never by
        dropping the socket (what was committed before the error stays committed)."""
        frame = _decode(raw)
        if frame is None:
            await self.send(error_frame(400, "frame: must be a JSON object"))
            return
        try:
            await self._apply(frame)
        except WebSocketDisconnect:
            raise
        except Exception as exc:
            store = unavailable_store(exc)
            if store is None:
                log.exception("a responder frame failed")
                await self.send(error_frame(500, "frame: not applied (internal error); send it again"))
            else:
                message = f"{store} unavailable: the frame was not applied; send it again shortly"
                await self.send(error_frame(503, message, store=store, alert_id=frame.get("alert_id")))

    async def _apply(self, frame: dict[str, Any]) -> None:
        kind = frame.get("type")
        try:
            if kind == "location":
                await self._location(frame)
            elif kind == "ack":
                await self._ack(_parse(AckFrame, frame))
            elif kind == "received":
                await self._received(_parse(ReceivedFrame, frame))
            elif kind == "status":
                msg = _parse(StatusFrame, frame)
                async with self.ctx.db.sessions() as session:
                    await alerts.report_status(session, self.ctx, self.responder_id, msg.alert_id, msg.status)
            else:
                await self.send(error_frame(400, f"type: must be one of {FRAME_TYPES}"))
        except FrameError as exc:
            await self.send(error_frame(422, str(exc), field=exc.field))
        except DispatchError as exc:
            await self.send(
                error_frame(exc.status, str(exc), field=exc.field, alert_id=frame.get("alert_id"))
            )

    async def _location(self, frame: dict[str, Any]) -> None:
        body = {k: v for k, v in frame.items() if k != "type"}
        update = _parse(LocationUpdate, body)
        if update.responder_id is not None and update.responder_id != self.responder_id:
            raise DispatchError(403, "responder_id", "a responder may only send its own position")
        try:
            observer = fix_observer(self.websocket)
            await ingest_location(
                self.ctx.store, self.ctx.settings, self.responder_id, update, observer=observer
            )
        except LocationRejected as exc:
            raise FrameError(exc.field, exc.rule) from None
        if self.ctx.presence is not None and time.monotonic() > self.presence_due:
            self.presence_due = time.monotonic() + REFRESH_S
            await self.ctx.presence.refresh(str(self.responder_id))

    async def _ack(self, msg: AckFrame) -> None:
        async with self.ctx.db.sessions() as session:
            view = await alerts.respond(
                session, self.ctx, self.responder_id, msg.alert_id, msg.response == "accept"
            )
        if view is not None:
            await self.send(incident_frame(view))

    async def _received(self, msg: ReceivedFrame) -> None:
        async with self.ctx.db.sessions() as session:
            await alerts.receive(session, self.ctx, self.responder_id, msg.alert_id, "socket")


def _decode(raw: str) -> dict[str, Any] | None:
    """The frame as a JSON object, or None: not JSON, not an object, or nested deeper than the
    parser's recursion limit (which raised `RecursionError` out of the socket loop)."""
    try:
        frame = json.loads(raw)
    except (ValueError, RecursionError):  # ValueError: bad JSON, or an integer of 4,300+ digits
        return None
    return frame if isinstance(frame, dict) else None


async def _receive(websocket: WebSocket, conn: Connection, max_bytes: int) -> str | None:
    """The next text frame; None after answering a frame that cannot be one (binary, oversize)
    with an `error` frame through `conn`. Raises `WebSocketDisconnect` when the peer goes."""
    message = await websocket.receive()
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000), message.get("reason"))
    text = message.get("text")
    if text is None:
        await conn.send(error_frame(400, "frame: must be text (a JSON object), not binary"))
        return None
    if len(text) > max_bytes or (4 * len(text) > max_bytes and len(text.encode()) > max_bytes):
        await conn.send(error_frame(413, f"frame: at most {max_bytes} bytes"))
        return None
    return text


class FrameError(ValueError):
    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}")
        self.field = field


def _parse(model: type[M], data: dict[str, Any]) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "frame"
        raise FrameError(field, first["msg"]) from None


async def _try_again_later(websocket: WebSocket, exc: Exception, subprotocol: str | None = None) -> bool:
    """When `exc` is a store outage, close the socket with 1013 ("try again later") naming the
    store, and say so: a phone or console reconnects by itself, where an HTTP 500 at the handshake
    or a dropped socket reads as a broken service. Other errors are the caller's to raise."""
    store = unavailable_store(exc)
    if store is None:
        return False
    log.warning("%s unavailable: socket told to come back", store)
    if websocket.client_state is WebSocketState.CONNECTING:
        await websocket.accept(subprotocol=subprotocol)
    await websocket.close(code=1013, reason=f"{store} unavailable; try again shortly")
    return True


async def _admit(websocket: WebSocket, roles: set[Role]) -> Principal | None:
    """Accept the socket, or close it with 4401 (bad token) / 4403 (wrong role) and a reason.

    Pages and phones send the token as subprotocols `["bearer", "<token>"]` (never in the URL,
    which access logs keep); the server selects `bearer`, as browsers require. An accepted socket
    is watched by the `SocketGuard`, which closes it (4401) when its token is revoked.
    """
    subprotocol = BEARER_SUBPROTOCOL if subprotocol_token(websocket) else None
    try:
        principal = await authenticate_websocket(websocket)
    except Exception as exc:
        if await _try_again_later(websocket, exc, subprotocol):
            return None
        raise
    await websocket.accept(subprotocol=subprotocol)
    if principal is not None and principal.role in roles:
        websocket.app.state.socket_guard.watch(principal.token_id, websocket)
    if principal is None:
        await websocket.close(code=4401, reason="invalid, revoked or missing token")
        return None
    if principal.role not in roles:
        await websocket.close(code=4403, reason=f"role '{principal.role.value}' may not use this socket")
        return None
    return principal


admit = _admit  # public for the other sockets of the service (`cad.feed_socket`): one way to sign in


@router.websocket("/v1/ws/responder")
async def responder_socket(websocket: WebSocket, crs: Crs = Crs.wgs84) -> None:
    principal = await _admit(websocket, {Role.responder})
    if principal is None or principal.responder_id is None:
        return
    ctx: DispatchContext = websocket.app.state.dispatch
    conn = ResponderConnection(websocket, ctx, principal.responder_id, crs)
    rid = str(principal.responder_id)
    ctx.fanout.attach_responder(rid, conn)
    if ctx.presence is not None:  # the ladder holds Web Push back a few seconds for a socket
        await ctx.presence.attach(rid)
    try:
        try:
            async with ctx.db.sessions() as session:
                replay = await alerts.pending_frames(session, principal.responder_id)
        except Exception as exc:  # without its pending alerts the phone must come back for them
            if await _try_again_later(websocket, exc):
                return
            raise
        for frame in replay:
            await conn.send(frame)
        while True:
            raw = await _receive(websocket, conn, ctx.settings.ws_max_frame_bytes)
            if raw is not None:
                await conn.handle(raw)
    except WebSocketDisconnect:
        pass
    finally:
        ctx.fanout.detach_responder(rid, conn)
        if ctx.presence is not None:
            await ctx.presence.detach(rid)


RESYNC_SLACK = 1000  # event ids are handed out before commit: a later id may commit first
RESYNC_LIMIT = 10_000


class DispatcherConnection:
    """A console's socket: each logged event once, and the log's missed part after an outage."""

    def __init__(self, websocket: WebSocket, ctx: DispatchContext, last_seq: int) -> None:
        self.websocket, self.ctx = websocket, ctx
        self.last_seq = last_seq  # the newest event sent, or the log's newest when it connected
        self.heard_at = datetime.now(UTC)  # when it last got an event (or connected): bounds a resync
        self.sent: set[int] = set()  # recent events' ids, to send each once

    async def send(self, frame: dict[str, Any]) -> None:
        seq = frame.get("seq")
        if isinstance(seq, int):
            if seq in self.sent:
                return
            self.sent.add(seq)
            self.last_seq, self.heard_at = max(self.last_seq, seq), datetime.now(UTC)
            if len(self.sent) > 4 * RESYNC_SLACK:
                self.sent = {s for s in self.sent if s > self.last_seq - 2 * RESYNC_SLACK}
        await self.websocket.send_json(frame)

    async def resync(self) -> None:
        """After a relay outage: the events logged since the last one sent (each sent once)."""
        try:
            async with self.ctx.db.sessions() as session:
                logged = await events.since(
                    session, self.last_seq - RESYNC_SLACK, self.heard_at, RESYNC_LIMIT
                )
            for e in logged:
                await self.send(event_frame(str(e.incident_id), e.id, e.ts, e.kind, e.data))
        except Exception:
            log.warning("could not resync a dispatcher console", exc_info=True)


@router.websocket("/v1/ws/dispatch")
async def dispatch_socket(websocket: WebSocket) -> None:
    if await _admit(websocket, {Role.dispatcher, Role.admin}) is None:
        return
    ctx: DispatchContext = websocket.app.state.dispatch
    conn = DispatcherConnection(websocket, ctx, await _newest_event(ctx))
    ctx.fanout.dispatchers.add(conn)
    try:
        while True:  # consoles only listen; text is ignored, binary or oversize gets an error
            await _receive(websocket, conn, ctx.settings.ws_max_frame_bytes)
    except WebSocketDisconnect:
        pass
    finally:
        ctx.fanout.dispatchers.discard(conn)


async def _newest_event(ctx: DispatchContext) -> int:
    """Where a new console's resync would start: the newest logged event (0 if unknown now)."""
    try:
        async with ctx.db.sessions() as session:
            return await events.newest_id(session)
    except Exception:
        log.warning("event log unreachable: a resync would start at its beginning", exc_info=True)
        return 0
