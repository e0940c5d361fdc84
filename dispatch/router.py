"""HTTP routes of incidents: thin adapters over `dispatch.service`."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Depends, HTTPException, Query, Request, status
from sqlalchemy.ext.asyncio import AsyncSession

from core.auth import Principal, Role, require_roles
from core.deps import get_session
from core.inputs import Text
from core.openapi import errors
from dispatch import service
from dispatch.context import DispatchContext
from dispatch.schemas import IncidentCreate, IncidentDetail, IncidentOut
from geo.crs import Crs

router = APIRouter(prefix="/v1/incidents", tags=["incidents"])
dispatcher_only = require_roles(Role.dispatcher)


def dispatch_context(request: Request) -> DispatchContext:
    return request.app.state.dispatch


def _http(exc: service.DispatchError) -> HTTPException:
    return HTTPException(exc.status, str(exc))


@router.post("", status_code=status.HTTP_201_CREATED, response_model=IncidentOut)
async def open_incident(
    body: IncidentCreate,
    principal: Principal = Depends(dispatcher_only),
    session: AsyncSession = Depends(get_session),
    ctx: DispatchContext = Depends(dispatch_context),
) -> IncidentOut:
    """Match, assign roles and alert; the response has the alerts, AEDs and coverage verdict."""
    try:
        return await service.open_incident(session, ctx, body, f"{principal.role.value}:{principal.label}")
    except service.DispatchError as exc:
        raise _http(exc) from None


@router.get("", response_model=list[IncidentOut])
async def list_incidents(
    status_: Annotated[Literal["open", "closed"] | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    crs: Crs = Crs.wgs84,
    _: Principal = Depends(dispatcher_only),
    session: AsyncSession = Depends(get_session),
) -> list[IncidentOut]:
    """Newest first; `status=open` for the console's list."""
    return await service.list_incidents(session, status_, limit, crs)


@router.get("/{incident_id}", response_model=IncidentDetail)
async def get_incident(
    incident_id: uuid.UUID,
    crs: Crs = Crs.wgs84,
    _: Principal = Depends(dispatcher_only),
    session: AsyncSession = Depends(get_session),
) -> IncidentDetail:
    """State, alerts and the full event log."""
    try:
        return await service.incident_detail(session, incident_id, crs)
    except service.DispatchError as exc:
        raise _http(exc) from None


@router.post("/{incident_id}/close", response_model=IncidentOut, responses=errors(409))
async def close_incident(
    incident_id: uuid.UUID,
    reason: Annotated[Text | None, Body(embed=True, max_length=500)] = None,
    principal: Principal = Depends(dispatcher_only),
    session: AsyncSession = Depends(get_session),
    ctx: DispatchContext = Depends(dispatch_context),
) -> IncidentOut:
    """Close the incident; responders still alerted or on the way get a `cancel`."""
    try:
        return await service.close_incident(
            session, ctx, incident_id, f"{principal.role.value}:{principal.label}", reason
        )
    except service.DispatchError as exc:
        raise _http(exc) from None
