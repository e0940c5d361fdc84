"""HTTP routes for answering an alert without a socket: from a push notification's action, or
from the page an SMS link opens.

Both sign in either with the alert's own responder's bearer token or with the alert's one-time
code in `X-Alert-Code` (`dispatch.channels.codes` says what the code may do). A code opens only
its alert: it is never a sign-in as the responder.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Header, HTTPException, Request, status
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.auth import Role, authenticate, hash_token
from core.deps import get_session
from core.openapi import errors
from core.ratelimit import FailedLookups, Limited
from dispatch import alerts
from dispatch.channels import codes
from dispatch.channels.schemas import AlertRead, AnswerIn, AnswerOut, ReceiptIn, ReceiptOut
from dispatch.context import DispatchContext
from dispatch.frames import alert_frame, incident_frame
from dispatch.models import ENGAGED, Alert
from dispatch.service import DispatchError, alert_views

router = APIRouter(prefix="/v1/alerts", tags=["alerts"])
CODE_HEADER = "X-Alert-Code"
CALLER_ERRORS = errors(401, 403, 404)


@dataclass(frozen=True, slots=True)
class AlertCaller:
    """Who acts on an alert: its responder, signed in by token or by one of its codes."""

    responder_id: uuid.UUID
    code: codes.FoundCode | None = None


def _refused(exc: codes.CodeRefused) -> HTTPException:
    return HTTPException(exc.status, str(exc))


async def _by_code(request: Request, code: str, alert_id: uuid.UUID) -> AlertCaller:
    """The caller behind a one-time code. Unknown codes count as failed sign-ins of the address
    (`core.ratelimit.FailedLookups`), so guessing is as limited as guessing tokens."""
    state = request.app.state
    digest, address = hash_token(code), request.client.host if request.client else "unknown"
    failures: FailedLookups | None = getattr(state, "failed_lookups", None)
    refused = failures.refuse_without_lookup(digest, address) if failures is not None else False
    if isinstance(refused, Limited):
        raise HTTPException(429, str(refused), headers={"Retry-After": str(refused.retry_after_s)})
    if refused:
        raise HTTPException(401, f"{CODE_HEADER}: unknown code")
    async with state.db.sessions() as session:
        try:
            found = await codes.check(session, code, alert_id)
        except codes.CodeRefused as exc:
            if exc.status == 401 and failures is not None and "unknown" in str(exc):
                await failures.record_failure(digest, address)
            raise _refused(exc) from None
    return AlertCaller(found.responder_id, found)


async def alert_caller(
    request: Request,
    alert_id: uuid.UUID,
    x_alert_code: Annotated[
        str | None,
        Header(
            max_length=100,
            description="the alert's one-time code (from an SMS or voice link), instead of a token",
        ),
    ] = None,
) -> AlertCaller:
    """The alert's responder by bearer token, or whoever holds one of the alert's codes."""
    if x_alert_code is not None:
        return await _by_code(request, x_alert_code, alert_id)
    principal = await authenticate(request)
    if principal.role is not Role.responder or principal.responder_id is None:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"role '{principal.role.value}' may not answer alerts: only the alert's responder "
            f"(a responder token, or the alert's code in {CODE_HEADER})",
        )
    return AlertCaller(principal.responder_id)


def dispatch_context(request: Request) -> DispatchContext:
    return request.app.state.dispatch


def _http(exc: DispatchError) -> HTTPException:
    return HTTPException(exc.status, str(exc))


@router.post("/{alert_id}/received", response_model=ReceiptOut, responses=CALLER_ERRORS)
async def received(
    alert_id: uuid.UUID,
    body: Annotated[ReceiptIn | None, Body()] = None,
    caller: AlertCaller = Depends(alert_caller),
    session: AsyncSession = Depends(get_session),
    ctx: DispatchContext = Depends(dispatch_context),
) -> ReceiptOut:
    """The receipt: the phone has put the alert in front of the person. Only this (or the socket's
    `received` frame, or an answer) makes an alert `delivered`; sending it again, or for an alert
    already answered, changes nothing (200)."""
    via = (body.channel if body else None) or (caller.code.channel if caller.code else "app")
    try:
        alert = await alerts.receive(session, ctx, caller.responder_id, alert_id, via)
    except DispatchError as exc:
        raise _http(exc) from None
    return ReceiptOut(alert_id=alert.id, status=alert.status, delivered_via=alert.delivered_via)


@router.post("/{alert_id}/answer", response_model=AnswerOut, responses=errors(401, 403, 404, 409))
async def answer(
    alert_id: uuid.UUID,
    body: AnswerIn,
    caller: AlertCaller = Depends(alert_caller),
    session: AsyncSession = Depends(get_session),
    ctx: DispatchContext = Depends(dispatch_context),
) -> AnswerOut:
    """Accept or decline, as the socket's `ack` does; on accept the answer carries the `incident`
    frame (the exact place). A one-time code answers once; after that it only reads."""
    accept = body.response == "accept"
    code = caller.code

    async def spend() -> None:
        if code is not None:
            await codes.spend(session, code.id)

    try:
        view = await alerts.respond(
            session,
            ctx,
            caller.responder_id,
            alert_id,
            accept,
            via=code.channel if code else "app",
            before_commit=spend,
        )
    except DispatchError as exc:
        raise _http(exc) from None
    except codes.CodeRefused as exc:
        raise _refused(exc) from None
    return AnswerOut(
        alert_id=alert_id,
        status="accepted" if accept else "declined",
        incident=incident_frame(view) if view is not None else None,
    )


@router.get("/{alert_id}", response_model=AlertRead, responses=CALLER_ERRORS)
async def read_alert(
    alert_id: uuid.UUID,
    caller: AlertCaller = Depends(alert_caller),
    session: AsyncSession = Depends(get_session),
) -> AlertRead:
    """The alert as the app shows it (what an SMS link opens): the `alert` frame, and once
    accepted the `incident` frame with the exact place."""
    views = await alert_views(session, [alert_id])
    if not views:
        raise HTTPException(404, f"alert_id: no alert {alert_id}")
    view = views[0]
    if view.responder_id != str(caller.responder_id):
        raise HTTPException(403, "alert_id: this alert was sent to another responder")
    delivered_via = (await session.execute(select(Alert.delivered_via).where(Alert.id == alert_id))).scalar()
    return AlertRead(
        alert_id=alert_id,
        status=view.status,
        delivered_via=delivered_via,
        alert=alert_frame(view),
        incident=incident_frame(view) if view.status in ENGAGED else None,
    )
