"""HTTP routes of outcomes and of the Utstein report: thin adapters over `outcomes.service`."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import AwareDatetime
from sqlalchemy.ext.asyncio import AsyncSession

from core.auth import Principal, Role, require_roles
from core.config import Settings
from core.deps import get_app_settings, get_session
from core.openapi import errors
from dispatch.fanout import Fanout
from outcomes import service, utstein
from outcomes.schemas import OutcomeIn, OutcomeOut

router = APIRouter(tags=["outcomes"])
outcome_writers = require_roles(Role.dispatcher, Role.admin, Role.coordinator, Role.cad)
report_readers = require_roles(Role.planner, Role.admin, Role.coordinator)
CSV_TYPE = "text/csv; charset=utf-8"
OPEN_LEFT_OUT = "X-Open-Incidents-Left-Out"
"""Response header of the Utstein report: incidents of the window not in it because still open."""


def _http(exc: service.OutcomeError) -> Exception:
    """A 422 in the service's uniform body (every field and rule); other codes as one sentence."""
    if exc.status == 422:
        return RequestValidationError(
            [{"loc": ("body", p.field), "msg": p.rule, "type": "outcome_rule"} for p in exc.problems]
        )
    return HTTPException(exc.status, str(exc))


def _fanout(request: Request) -> Fanout:
    """The consoles' feed: an outcome recorded shows on every console's event log at once."""
    return request.app.state.dispatch.fanout  # type: ignore[no-any-return]


@router.put(
    "/v1/incidents/{incident_id}/outcome",
    response_model=OutcomeOut,
    responses={**errors(409), 201: {"model": OutcomeOut, "description": "The outcome, first recorded"}},
)
async def put_outcome(
    incident_id: uuid.UUID,
    body: OutcomeIn,
    response: Response,
    request: Request,
    principal: Principal = Depends(outcome_writers),
    session: AsyncSession = Depends(get_session),
) -> OutcomeOut:
    """Record or amend the outcome of a closed incident (409 while it is open). Fields sent are
    stored (null: not known), fields left out keep their value; the record after the change must
    hold together (422 naming the field and the rule). 201 when first recorded, else 200. An
    emergency centre's token may report only on its own incidents."""
    try:
        out, created = await service.record_outcome(session, _fanout(request), incident_id, body, principal)
    except service.OutcomeError as exc:
        raise _http(exc) from None
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return out


@router.get("/v1/incidents/{incident_id}/outcome", response_model=OutcomeOut)
async def get_outcome(
    incident_id: uuid.UUID,
    principal: Principal = Depends(outcome_writers),
    session: AsyncSession = Depends(get_session),
) -> OutcomeOut:
    """The recorded outcome (404 when none has been recorded yet)."""
    try:
        return await service.read_outcome(session, incident_id, principal)
    except service.OutcomeError as exc:
        raise _http(exc) from None


def _window(start: datetime, end: datetime, max_days: int) -> service.Window:
    if end <= start:
        problem = {"loc": ("query", "to"), "msg": "must be after from", "type": "window"}
        raise RequestValidationError([problem])
    if end - start > timedelta(days=max_days):
        rule = f"must be at most {max_days} days after from (DISPATCH_UTSTEIN_MAX_WINDOW_DAYS)"
        raise RequestValidationError([{"loc": ("query", "to"), "msg": rule, "type": "window"}])
    return service.Window(start, end)


@router.get(
    "/v1/reports/utstein",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "One row per closed incident"}},
)
async def utstein_report(
    start: Annotated[AwareDatetime, Query(alias="from", description="ISO 8601 with offset, inclusive")],
    end: Annotated[AwareDatetime, Query(alias="to", description="ISO 8601 with offset, exclusive")],
    _: Principal = Depends(report_readers),
    session: AsyncSession = Depends(get_session),
    settings: Settings = Depends(get_app_settings),
) -> Response:
    """The Utstein core fields of every closed incident opened in [from, to), oldest first, as CSV
    (`outcomes.utstein` documents each column). Incidents still open are left out (their record
    is not final); the header `X-Open-Incidents-Left-Out` says how many. The window may span at
    most `DISPATCH_UTSTEIN_MAX_WINDOW_DAYS` (366)."""
    window = _window(start, end, settings.utstein_max_window_days)
    facts, still_open = await service.utstein_facts(session, window)
    body = utstein.to_csv(facts, ZoneInfo(settings.timezone))
    name = f"utstein_{start.date().isoformat()}_{end.date().isoformat()}.csv"
    headers = {"Content-Disposition": f'attachment; filename="{name}"', OPEN_LEFT_OUT: str(still_open)}
    return Response(body, media_type=CSV_TYPE, headers=headers)
