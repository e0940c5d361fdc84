"""HTTP routes of the AED registry: thin adapters from requests to `service` and back.

Coordinates come in and go out in the caller's `crs`; everything in between is WGS-84.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import asdict, replace
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from aed_registry import service
from aed_registry.availability import HoursPolicy
from aed_registry.importers import ColumnMapping, ImportFileError, ImportReport, parse_csv, parse_geojson
from aed_registry.models import BLOCKING_REPORT_KINDS, AedReport
from aed_registry.schemas import (
    AedCreate,
    AedOut,
    AedPatch,
    AvailabilityChangeOut,
    EventOut,
    ImportFormat,
    ImportOut,
    NearbyOut,
    ReportIn,
    ReportOut,
    ResolveIn,
)
from aed_registry.store import AedRow, AedStore
from aed_registry.trust import TRUSTED_ROLES, Reporter
from core.auth import Principal, Role, require_roles
from core.config import Settings
from core.deps import get_app_settings, get_session
from core.inputs import Text
from core.openapi import errors
from geo.crs import Crs, from_wgs84, to_wgs84
from geo.validation import LatitudeQuery, LongitudeQuery

router = APIRouter(prefix="/v1/aeds", tags=["aeds"])
admin_only = require_roles(Role.admin)
anyone = require_roles(*Role)


def actor_of(principal: Principal) -> str:
    """How history names who did something: role and token label."""
    return f"{principal.role.value}:{principal.label}"


def field_error(status_code: int, field: str, rule: str) -> JSONResponse:
    """The uniform 4xx body (`dispatch/errors.py`) for errors found outside request validation."""
    return JSONResponse(
        {"detail": f"{field}: {rule}", "errors": [{"field": field, "rule": rule}]}, status_code=status_code
    )


def aed_out(row: AedRow, crs: Crs, settings: Settings) -> AedOut:
    lat, lng = from_wgs84(row.lat, row.lng, crs)
    open_now = HoursPolicy.from_settings(settings).open_state(row.values["opening_hours"], datetime.now(UTC))
    return AedOut(id=row.id, lat=lat, lng=lng, crs=crs, open_now=open_now, **row.values)


def report_out(report: AedReport) -> ReportOut:
    return ReportOut(
        id=str(report.id),
        aed_id=str(report.aed_id),
        kind=report.kind,
        note=report.note,
        blocking=report.kind in BLOCKING_REPORT_KINDS,
        reported_by=report.reported_by,
        created_at=report.created_at,
        confirmed_at=report.confirmed_at,
        in_effect=report.kind in BLOCKING_REPORT_KINDS
        and report.confirmed_at is not None
        and report.resolved_at is None,
        resolved_at=report.resolved_at,
        resolved_by=report.resolved_by,
        resolution=report.resolution,
    )


@router.get("/nearby", response_model=NearbyOut)
async def nearby(
    lat: LatitudeQuery,
    lng: LongitudeQuery,
    at: datetime | None = Query(None, description="ISO time; default now; naive = service time zone"),
    limit: int = Query(10, ge=1, le=100),
    max_distance_m: float | None = Query(None, gt=0, le=100_000),
    crs: Crs = Query(Crs.wgs84),
    _: Principal = Depends(anyone),
    session: AsyncSession = Depends(get_session),
    settings: Settings = Depends(get_app_settings),
) -> NearbyOut:
    """Nearest AEDs a responder can use at `at`: active, open (or hours unknown if allowed), not reported."""
    when = at or datetime.now(UTC)
    wlat, wlng = to_wgs84(lat, lng, crs)
    found = await service.nearby_available(
        session, wlat, wlng, at=when, limit=limit, max_distance_m=max_distance_m, settings=settings
    )
    aeds = [
        replace(a, **dict(zip(("lat", "lng"), from_wgs84(a.lat, a.lng, crs), strict=True))) for a in found
    ]
    return NearbyOut(at=when, crs=crs, aeds=aeds)


@router.get("")
async def in_bbox(
    bbox: str = Query(..., description="min_lng,min_lat,max_lng,max_lat in `crs`"),
    crs: Crs = Query(Crs.wgs84),
    at: datetime | None = Query(None, description="time for `open_now`; default now"),
    limit: int = Query(5000, ge=1, le=50_000),
    _: Principal = Depends(anyone),
    session: AsyncSession = Depends(get_session),
    settings: Settings = Depends(get_app_settings),
) -> Any:
    """AEDs in a box as a GeoJSON FeatureCollection for maps (removed AEDs left out)."""
    try:
        min_lng, min_lat, max_lng, max_lat = (float(v) for v in bbox.split(","))
    except ValueError:
        return field_error(422, "bbox", "must be four numbers: min_lng,min_lat,max_lng,max_lat")
    if not (-90 <= min_lat < max_lat <= 90 and -180 <= min_lng < max_lng <= 180):
        return field_error(
            422, "bbox", "needs -180 <= min_lng < max_lng <= 180 and -90 <= min_lat < max_lat <= 90"
        )
    south, west = to_wgs84(min_lat, min_lng, crs)
    north, east = to_wgs84(max_lat, max_lng, crs)
    rows = await AedStore(session).in_bbox(south, west, north, east, limit=limit)
    policy, when = HoursPolicy.from_settings(settings), at or datetime.now(UTC)
    features = []
    for row in rows:
        lat, lng = from_wgs84(row.lat, row.lng, crs)
        props = {k: row.values[k] for k in ("external_id", "name", "status", "access", "opening_hours")}
        props |= {"id": row.id, "location_detail": row.values["location_detail"]}
        props["open_now"] = policy.open_state(row.values["opening_hours"], when)
        features.append(
            {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lng, lat]}, "properties": props}
        )
    return {"type": "FeatureCollection", "crs_name": crs.value, "features": features}


@router.post("", status_code=status.HTTP_201_CREATED, response_model=AedOut, responses=errors(409))
async def create(
    body: AedCreate,
    principal: Principal = Depends(admin_only),
    session: AsyncSession = Depends(get_session),
    settings: Settings = Depends(get_app_settings),
) -> Any:
    """Register one AED (admin)."""
    row = await _commit(session, service.create_aed(session, body.record(), actor_of(principal)))
    return row if isinstance(row, JSONResponse) else aed_out(row, body.crs, settings)


@router.post("/import", response_model=ImportOut)
async def import_file(
    request: Request,
    format: ImportFormat | None = Query(None, description="csv or geojson; default: sniffed"),
    crs: Crs = Query(Crs.wgs84, description="datum of the file's coordinates"),
    map: list[str] = Query([], description="repeatable field:Column, e.g. map=name:Site Name"),
    lat_col: str | None = Query(None, description="shorthand for map=lat:COLUMN"),
    lng_col: str | None = Query(None, description="shorthand for map=lng:COLUMN"),
    delimiter: str = Query(",", min_length=1, max_length=1),
    source: Text | None = Query(None, max_length=200, description="stored on rows without a source"),
    principal: Principal = Depends(admin_only),
    session: AsyncSession = Depends(get_session),
) -> Any:
    """Bulk CSV/GeoJSON upsert (admin): bad rows are reported by line, good rows are kept."""
    data = await _upload(request)
    if isinstance(data, JSONResponse):
        return data
    mapping_items = [*map, *([f"lat:{lat_col}"] if lat_col else []), *([f"lng:{lng_col}"] if lng_col else [])]
    fmt = format or (ImportFormat.geojson if data.lstrip().startswith("{") else ImportFormat.csv)
    try:
        if fmt is ImportFormat.geojson:
            parsed: ImportReport = await asyncio.to_thread(parse_geojson, data, crs=crs)
        else:
            mapping = ColumnMapping.parse(mapping_items)
            parsed = await asyncio.to_thread(parse_csv, data, crs=crs, mapping=mapping, delimiter=delimiter)
    except ImportFileError as exc:
        return field_error(422, *str(exc).split(": ", 1))
    report = await service.import_records(session, parsed, actor_of(principal), source=source)
    await session.commit()
    return ImportOut(
        rows=report.rows, created=report.created, updated=report.updated, unchanged=report.unchanged,
        errors=[asdict(e) for e in report.errors], hours_flagged=[asdict(e) for e in report.hours_flagged],
        duplicates=[asdict(d) for d in report.duplicates],
    )  # fmt: skip


async def _upload(request: Request) -> str | JSONResponse:
    """The file's text: a multipart `file` field or the raw body; UTF-8, else GB18030 (Chinese registries)."""
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        form = await request.form()
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            return field_error(422, "file", "multipart upload needs a 'file' field")
        raw = await upload.read()
    else:
        raw = await request.body()
    if not raw.strip():
        return field_error(422, "file", "empty upload")
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return field_error(422, "file", "must be UTF-8 or GB18030 text")


@router.get("/{aed_id}", response_model=AedOut)
async def read(
    aed_id: uuid.UUID,
    crs: Crs = Query(Crs.wgs84),
    _: Principal = Depends(anyone),
    session: AsyncSession = Depends(get_session),
    settings: Settings = Depends(get_app_settings),
) -> AedOut:
    return aed_out(await _found(service.get_aed(session, aed_id)), crs, settings)


@router.patch("/{aed_id}", response_model=AedOut, responses=errors(409))
async def patch(
    aed_id: uuid.UUID,
    body: AedPatch,
    principal: Principal = Depends(admin_only),
    session: AsyncSession = Depends(get_session),
    settings: Settings = Depends(get_app_settings),
) -> Any:
    """Change fields (admin); every change lands in the history."""
    row = await _commit(session, service.update_aed(session, aed_id, body.record(), actor_of(principal)))
    return row if isinstance(row, JSONResponse) else aed_out(row, body.crs, settings)


@router.delete("/{aed_id}", response_model=AedOut, responses=errors(409))
async def delete(
    aed_id: uuid.UUID,
    principal: Principal = Depends(admin_only),
    session: AsyncSession = Depends(get_session),
    settings: Settings = Depends(get_app_settings),
) -> AedOut:
    """Retire an AED (admin): status `removed`; the row and its history are kept."""
    return aed_out(
        await _commit(session, service.remove_aed(session, aed_id, actor_of(principal))), Crs.wgs84, settings
    )


@router.get("/{aed_id}/history", response_model=list[EventOut])
async def read_history(
    aed_id: uuid.UUID, _: Principal = Depends(anyone), session: AsyncSession = Depends(get_session)
) -> list[EventOut]:
    events = await _found(service.history(session, aed_id))
    return [EventOut(id=e.id, kind=e.kind, actor=e.actor, at=e.at, data=e.data) for e in events]


@router.get("/{aed_id}/reports", response_model=list[ReportOut])
async def list_reports(
    aed_id: uuid.UUID, _: Principal = Depends(anyone), session: AsyncSession = Depends(get_session)
) -> list[ReportOut]:
    await _found(service.get_aed(session, aed_id))
    return [report_out(r) for r in await AedStore(session).reports_of(aed_id)]


def reporter_of(principal: Principal) -> Reporter:
    """The reporter's identity for the trust rule: the responder, else the token."""
    if principal.responder_id is not None:
        identity = f"responder:{principal.responder_id}"
    else:
        identity = f"token:{principal.token_id}" if principal.token_id else "admin:env"
    return Reporter(actor_of(principal), identity, principal.role.value in TRUSTED_ROLES)


@router.post(
    "/{aed_id}/reports", status_code=status.HTTP_201_CREATED, response_model=ReportOut, responses=errors(409)
)
async def report(
    aed_id: uuid.UUID,
    body: ReportIn,
    principal: Principal = Depends(anyone),
    session: AsyncSession = Depends(get_session),
    settings: Settings = Depends(get_app_settings),
) -> Any:
    """Report a problem found on site (any role). Missing/broken hide the AED until resolved once
    the report counts: an admin's at once, anyone else's when a second independent reporter
    confirms it. 409 for a second open report of the same kind by the same reporter; 429 past the
    hourly limits per reporter and per AED."""
    limits = service.ReportLimits.from_settings(settings)
    try:
        done = await _commit(
            session,
            service.report_problem(session, aed_id, body.kind, body.note, reporter_of(principal), limits),
        )
    except service.ReportLimited as exc:
        await session.rollback()
        response = field_error(429, *str(exc).split(": ", 1))
        response.headers["Retry-After"] = str(exc.retry_after_s)
        return response
    return done if isinstance(done, JSONResponse) else report_out(done)


@router.get("/{aed_id}/availability", response_model=list[AvailabilityChangeOut])
async def availability_log(
    aed_id: uuid.UUID,
    _: Principal = Depends(require_roles(Role.admin, Role.dispatcher, Role.planner)),
    session: AsyncSession = Depends(get_session),
) -> list[AvailabilityChangeOut]:
    """Every change of whether dispatch may use this AED: who, when, why, before and after."""
    await _found(service.get_aed(session, aed_id))
    return [
        AvailabilityChangeOut(
            id=c.id, at=c.at, actor=c.actor, reason=c.reason, before=c.before, after=c.after,
            report_id=str(c.report_id) if c.report_id else None,
        )
        for c in await AedStore(session).availability_log(aed_id)
    ]  # fmt: skip


@router.post("/{aed_id}/reports/{report_id}/resolve", response_model=ReportOut, responses=errors(409))
async def resolve(
    aed_id: uuid.UUID,
    report_id: uuid.UUID,
    body: ResolveIn | None = None,
    principal: Principal = Depends(admin_only),
    session: AsyncSession = Depends(get_session),
) -> Any:
    """Close a report (admin)."""
    resolution = body.resolution if body else None
    done = await _commit(
        session, service.resolve_report(session, aed_id, report_id, resolution, actor_of(principal))
    )
    return done if isinstance(done, JSONResponse) else report_out(done)


async def _commit(session: AsyncSession, awaitable: Any) -> Any:
    """Await a service change and commit it; a conflict is answered 409 naming the field, nothing kept."""
    try:
        result = await _found(awaitable)
    except service.AedConflict as exc:
        await session.rollback()
        return field_error(409, *str(exc).split(": ", 1))
    await session.commit()
    return result


async def _found(awaitable: Any) -> Any:
    """Await a service call, turning `AedNotFound` into 404."""
    try:
        return await awaitable
    except service.AedNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
