"""HTTP routes of debriefs and their follow-ups: thin adapters over `debriefs.service`.

A responder sees and gives only their own debriefs; coordinators (and admins) see who asked for
support or was hurt, and mark each follow-up done with a note of what was done.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, status
from sqlalchemy.ext.asyncio import AsyncSession

from core.auth import Principal, Role, require_roles
from core.config import Settings
from core.deps import get_app_settings, get_session
from core.openapi import errors
from debriefs import service
from debriefs.schemas import DebriefIn, DebriefOut, FollowUpDone, FollowUpOut, FollowUpState, PendingDebrief
from responders.models import Responder

router = APIRouter(tags=["debriefs"])
self_or_admin = require_roles(Role.responder, Role.admin)
responders_only = require_roles(Role.responder)
coordinators = require_roles(Role.coordinator, Role.admin)


def _http(exc: service.DebriefError) -> HTTPException:
    return HTTPException(exc.status, str(exc))


@router.get("/v1/responders/{responder_id}/debriefs/pending", response_model=list[PendingDebrief])
async def pending_debriefs(
    responder_id: uuid.UUID,
    principal: Principal = Depends(self_or_admin),
    session: AsyncSession = Depends(get_session),
    settings: Settings = Depends(get_app_settings),
) -> list[PendingDebrief]:
    """Incidents this responder turned out for that ended within `DISPATCH_DEBRIEF_WINDOW_DAYS`
    (14) without a debrief, the most recently ended first: what the app asks about on opening."""
    if principal.role is Role.responder and principal.responder_id != responder_id:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, "responder_id: a responder sees only their own debriefs"
        )
    if await session.get(Responder, responder_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"responder_id: no responder {responder_id}")
    return await service.pending(session, responder_id, timedelta(days=settings.debrief_window_days))


@router.post(
    "/v1/alerts/{alert_id}/debrief",
    status_code=status.HTTP_201_CREATED,
    response_model=DebriefOut,
    responses=errors(409),
)
async def give_debrief(
    alert_id: uuid.UUID,
    body: DebriefIn,
    principal: Principal = Depends(responders_only),
    session: AsyncSession = Depends(get_session),
) -> DebriefOut:
    """The responder's debrief of an incident they accepted, once it ended: how it went, whether
    they were hurt, whether they would like to talk to someone (either opens a follow-up). 409
    when already given, when the alert was never accepted or is still going; 403 for another
    responder's alert."""
    if principal.responder_id is None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "only the alert's responder gives its debrief")
    try:
        return await service.give(session, principal.responder_id, alert_id, body)
    except service.DebriefError as exc:
        raise _http(exc) from None


@router.get("/v1/debriefs/follow-ups", response_model=list[FollowUpOut])
async def list_follow_ups(
    state: Annotated[FollowUpState, Query(description="open: to do (oldest first); done: the record")] = (
        FollowUpState.open
    ),
    _: Principal = Depends(coordinators),
    session: AsyncSession = Depends(get_session),
) -> list[FollowUpOut]:
    """Responders to get in touch with (name, phone, team), the incident and their answers."""
    return await service.follow_ups(session, state)


@router.post("/v1/debriefs/{debrief_id}/follow-up", response_model=FollowUpOut, responses=errors(409))
async def follow_up_done(
    debrief_id: uuid.UUID,
    body: FollowUpDone,
    principal: Principal = Depends(coordinators),
    session: AsyncSession = Depends(get_session),
) -> FollowUpOut:
    """Mark an open follow-up done, with a note of what was done (409 when it is not open)."""
    try:
        return await service.mark_done(
            session, debrief_id, f"{principal.role.value}:{principal.label}", body.note
        )
    except service.DebriefError as exc:
        raise _http(exc) from None
