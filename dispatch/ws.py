"""Websockets: responders (locations in, alerts out, answers in) and dispatchers (live events).

A malformed frame gets an `error` frame and the socket stays open. On every (re)connect the phone
first gets every pending unexpired alert from Postgres, then whatever the relay brings; frames are
de-duplicated per connection, so an alert arriving both ways is shown once.

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
import uuid
from typing import Any, TypeVar

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import BaseModel, ValidationError

from core.auth import BEARER_SUBPROTOCOL, Principal, Role, authenticate_websocket, subprotocol_token
from dispatch import alerts
from dispatch.context import DispatchContext
from dispatch.frames import error_frame, incident_frame, reproject
from dispatch.schemas import AckFrame, StatusFrame
from dispatch.service import DispatchError
from geo.crs import Crs
from responders.ingest import LocationRejected, ingest_location
from responders.schemas import LocationUpdate

router = APIRouter(tags=["websockets"])
log = logging.getLogger(__name__)
FRAME_TYPES = "location, ack, status"
M = TypeVar("M", bound=BaseModel)


class ResponderConnection:
    """One phone's socket: sends in its datum, once per alert, and records delivery."""

    def __init__(self, websocket: WebSocket, ctx: DispatchContext, responder_id: uuid.UUID, crs: Crs) -> None:
        self.websocket, self.ctx, self.responder_id, self.crs = websocket, ctx, responder_id, crs
        self.seen_alerts: set[str] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.lock = asyncio.Lock()

    async def send(self, frame: dict[str, Any]) -> None:
        if frame["type"] == "alert":
            if frame["alert_id"] in self.seen_alerts:
                return
            self.seen_alerts.add(frame["alert_id"])
        async with self.lock:
            await self.websocket.send_json(reproject(frame, self.crs))
        if frame["type"] == "alert":
            task = asyncio.create_task(self._delivered(uuid.UUID(frame["alert_id"])))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _delivered(self, alert_id: uuid.UUID) -> None:
        try:
            async with self.ctx.db.sessions() as session:
                await alerts.mark_delivered(session, self.ctx, [alert_id])
        except Exception:
            log.exception("could not record delivery of alert %s", alert_id)

    async def handle(self, raw: str) -> None:
        try:
            frame = json.loads(raw)
        except json.JSONDecodeError:
            await self.send(error_frame(400, "frame: must be a JSON object"))
            return
        kind = frame.get("type") if isinstance(frame, dict) else None
        try:
            if kind == "location":
                await self._location(frame)
            elif kind == "ack":
                await self._ack(_parse(AckFrame, frame))
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
            await ingest_location(self.ctx.store, self.ctx.settings, self.responder_id, update)
        except LocationRejected as exc:
            raise FrameError(exc.field, exc.rule) from None

    async def _ack(self, msg: AckFrame) -> None:
        async with self.ctx.db.sessions() as session:
            view = await alerts.respond(
                session, self.ctx, self.responder_id, msg.alert_id, msg.response == "accept"
            )
        if view is not None:
            await self.send(incident_frame(view))


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


async def _admit(websocket: WebSocket, roles: set[Role]) -> Principal | None:
    """Accept the socket, or close it with 4401 (bad token) / 4403 (wrong role) and a reason.

    Pages and phones send the token as subprotocols `["bearer", "<token>"]` (never in the URL,
    which access logs keep); the server selects `bearer`, as browsers require. An accepted socket
    is watched by the `SocketGuard`, which closes it (4401) when its token is revoked.
    """
    principal = await authenticate_websocket(websocket)
    await websocket.accept(subprotocol=BEARER_SUBPROTOCOL if subprotocol_token(websocket) else None)
    if principal is not None and principal.role in roles:
        websocket.app.state.socket_guard.watch(principal.token_id, websocket)
    if principal is None:
        await websocket.close(code=4401, reason="invalid, revoked or missing token")
        return None
    if principal.role not in roles:
        await websocket.close(code=4403, reason=f"role '{principal.role.value}' may not use this socket")
        return None
    return principal


@router.websocket("/v1/ws/responder")
async def responder_socket(websocket: WebSocket, crs: Crs = Crs.wgs84) -> None:
    principal = await _admit(websocket, {Role.responder})
    if principal is None or principal.responder_id is None:
        return
    ctx: DispatchContext = websocket.app.state.dispatch
    conn = ResponderConnection(websocket, ctx, principal.responder_id, crs)
    rid = str(principal.responder_id)
    ctx.fanout.attach_responder(rid, conn)
    try:
        async with ctx.db.sessions() as session:
            replay = await alerts.pending_frames(session, principal.responder_id)
        for frame in replay:
            await conn.send(frame)
        while True:
            await conn.handle(await websocket.receive_text())
    except WebSocketDisconnect:
        pass
    finally:
        ctx.fanout.detach_responder(rid, conn)


class DispatcherConnection:
    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket

    async def send(self, frame: dict[str, Any]) -> None:
        await self.websocket.send_json(frame)


@router.websocket("/v1/ws/dispatch")
async def dispatch_socket(websocket: WebSocket) -> None:
    if await _admit(websocket, {Role.dispatcher, Role.admin}) is None:
        return
    ctx: DispatchContext = websocket.app.state.dispatch
    conn = DispatcherConnection(websocket)
    ctx.fanout.dispatchers.add(conn)
    try:
        while True:
            await websocket.receive_text()  # consoles only listen; anything sent is ignored
    except WebSocketDisconnect:
        pass
    finally:
        ctx.fanout.dispatchers.discard(conn)
