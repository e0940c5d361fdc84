"""HTTP route of the programme report: `GET /v1/reports/programme` (planners, admins, coordinators),
as JSON or CSV; a thin adapter over `programme.service`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Response
from fastapi.exceptions import RequestValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from core.auth import Principal, Role, require_roles
from core.calendar import on_city_clock
from core.config import Settings
from core.deps import get_app_settings, get_session
from programme.figures import to_csv
from programme.schemas import Grouping, ProgrammeReport, ReportFormat
from programme.service import programme_report
from programme.window import window_problem

router = APIRouter(prefix="/v1/reports", tags=["reports"])
programme_readers = require_roles(Role.planner, Role.admin, Role.coordinator)
CSV = {200: {"content": {"text/csv": {}}, "description": "with format=csv: the rows, then the total"}}
WINDOW_END = "ISO date or time, excluded; naive = the city's clock"


@router.get("/programme", response_model=ProgrammeReport, response_model_by_alias=True, responses=CSV)
async def get_programme(
    start: Annotated[datetime, Query(alias="from", description="ISO date or time; naive = the city's clock")],
    end: Annotated[datetime, Query(alias="to", description=WINDOW_END)],
    by: Grouping = Grouping.district,
    format: ReportFormat = ReportFormat.json,
    _: Principal = Depends(programme_readers),
    session: AsyncSession = Depends(get_session),
    settings: Settings = Depends(get_app_settings),
) -> ProgrammeReport | Response:
    """How the circle performed in [from, to): per district, street, team or month, the incidents,
    the shares reached by a responder and by an AED within 5 minutes of opening, acceptance, alerts
    per incident, people who ran for nothing, active responders and duty hours; and a total."""
    zone = ZoneInfo(settings.timezone)
    start, end = on_city_clock(start, zone), on_city_clock(end, zone)
    problem = window_problem(start, end)
    if problem is not None:
        field, rule = problem
        raise RequestValidationError([{"loc": ("query", field), "msg": rule, "type": "value_error"}])
    report = await programme_report(session, start, end, by, zone)
    if format is ReportFormat.csv:
        name = f"programme-{by}-{start.date()}-{end.date()}.csv"
        return Response(
            to_csv([*report.rows, report.total]),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    return report
