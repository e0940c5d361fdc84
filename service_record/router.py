"""HTTP routes of the service record: one responder's figures, and the export for
volunteer-management systems (format in service_record/README.md). Thin adapters over `service`.

A responder reads only their own record; admins and programme coordinators read anyone's; the
export (everyone's, month by month) is for coordinators, admins and planners.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.responses import StreamingResponse
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.auth import Principal, Role, require_roles
from core.config import Settings
from core.deps import get_app_settings, get_session
from responders.models import Responder
from service_record import service
from service_record.export import (
    ExportBy,
    ExportFormat,
    as_csv,
    as_json,
    figures,
    in_pieces,
    json_header,
    rows_by,
)
from service_record.schemas import PointsRuleOut, ServiceOut
from service_record.tally import PointsRule, Window
from service_record.window import BadWindow, resolve

router = APIRouter(tags=["service record"])
record_readers = require_roles(Role.admin, Role.coordinator, Role.responder)
exporters = require_roles(Role.coordinator, Role.admin, Role.planner)
FROM = Query(
    None, alias="from", description="start, ISO 8601; no zone: the city's; default: 1st of this month"
)
TO = Query(
    None, alias="to", description="end (exclusive), ISO 8601; default: now; at most ~13 months after from"
)
MEDIA = {ExportFormat.csv: "text/csv; charset=utf-8", ExportFormat.json: "application/json"}


def points_rule(settings: Settings) -> PointsRule:
    return PointsRule(
        settings.points_per_duty_hour, settings.points_per_incident, settings.points_per_arrival
    )


def window_of(start: datetime | None, end: datetime | None, settings: Settings) -> Window:
    try:
        return resolve(start, end, ZoneInfo(settings.timezone), datetime.now(UTC))
    except BadWindow as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, str(exc)) from None


@router.get("/v1/responders/{responder_id}/service", response_model=ServiceOut)
async def service_of(
    responder_id: uuid.UUID,
    start: datetime | None = FROM,
    end: datetime | None = TO,
    principal: Principal = Depends(record_readers),
    session: AsyncSession = Depends(get_session),
    settings: Settings = Depends(get_app_settings),
) -> ServiceOut:
    """Time on duty, incidents attended, time on incidents and points in the window."""
    if principal.role is Role.responder and principal.responder_id != responder_id:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "a responder may only read their own service record")
    window = window_of(start, end, settings)
    if await session.scalar(select(Responder.id).where(Responder.id == responder_id)) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"responder_id: no responder {responder_id}")
    rule = points_rule(settings)
    record = await service.record_of(session, responder_id, window, datetime.now(UTC))
    tz = ZoneInfo(settings.timezone)
    return ServiceOut(
        responder_id=responder_id,
        from_=window.start.astimezone(tz),
        to=window.end.astimezone(tz),
        **figures(record, rule),
        rule=PointsRuleOut(**rule.named()),
    )


@router.get(
    "/v1/reports/service",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}, "application/json": {}}}},
)
async def service_export(
    request: Request,
    start: datetime | None = FROM,
    end: datetime | None = TO,
    by: ExportBy = Query(ExportBy.responder, description="a row per responder, or per team, per month"),
    format: ExportFormat = Query(ExportFormat.csv),
    _: Principal = Depends(exporters),
    settings: Settings = Depends(get_app_settings),
) -> StreamingResponse:
    """Service per responder (or team) per calendar month on the city's clock, streamed."""
    window = window_of(start, end, settings)
    tz, rule = ZoneInfo(settings.timezone), points_rule(settings)
    tallies = service.monthly_tallies(request.app.state.db.sessions, window, tz, datetime.now(UTC))
    rows = rows_by(tallies, by, rule)
    if format is ExportFormat.csv:
        body = as_csv(rows, by)
    else:
        header = json_header(
            window.start.astimezone(tz), window.end.astimezone(tz), by, settings.timezone, rule
        )
        body = as_json(rows, header)
    label = window.start.astimezone(tz).strftime("%Y-%m")
    disposition = f'attachment; filename="service-{by.value}-{label}.{format.value}"'
    return StreamingResponse(
        in_pieces(body), media_type=MEDIA[format], headers={"Content-Disposition": disposition}
    )
