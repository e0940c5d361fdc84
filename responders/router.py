"""HTTP routes of the responder registry and of location ingest: thin adapters over `service`.

Who may do what follows DESIGN.md: admins keep the registry; dispatchers read; a responder reads
and changes only their own duty, token and position; a `gateway` posts batches for many.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any, TypeVar

import pydantic_core
from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.auth import Principal, Role, require_roles
from core.config import Settings
from core.deps import get_app_settings, get_session
from core.openapi import errors, json_body
from core.revocation import announce_session_revoked
from geo.cells import box_area_cells
from geo.crs import Crs, from_wgs84, to_wgs84
from responders import service
from responders.acceptance_store import AcceptanceStore
from responders.importers import CsvFileError, parse_csv
from responders.ingest import LocationRejected, ingest_batch, ingest_location
from responders.models import Responder
from responders.observers import FixObserver, fix_observer
from responders.schemas import (
    AcceptanceOut,
    DutyIn,
    ImportReport,
    IngestResult,
    LocationBatch,
    LocationUpdate,
    ResponderCreate,
    ResponderCreated,
    ResponderOut,
    ResponderUpdate,
    TokenOut,
)
from responders.store import Box, LiveLocationStore

router = APIRouter(prefix="/v1/responders", tags=["responders"])
locations_router = APIRouter(prefix="/v1/locations", tags=["locations"])
admin_only = require_roles(Role.admin)
registry_readers = require_roles(Role.admin, Role.dispatcher, Role.responder)
admin_or_self = require_roles(Role.admin, Role.responder)
dispatch_readers = require_roles(Role.admin, Role.dispatcher)
location_posters = require_roles(Role.responder, Role.admin, Role.gateway)
MAX_IMPORT_BYTES = 32 * 2**20
ModelT = TypeVar("ModelT", bound=BaseModel)


def live_store(request: Request) -> LiveLocationStore:
    return request.app.state.live_store


def fail(status_code: int, field: str, rule: str) -> HTTPException:
    return HTTPException(status_code, f"{field}: {rule}")


def ensure_self(principal: Principal, responder_id: uuid.UUID) -> None:
    """A responder token may act only on its own responder."""
    if principal.role is Role.responder and principal.responder_id != responder_id:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "a responder may only act on their own record")


async def load_or_fail(session: AsyncSession, responder_id: uuid.UUID) -> Responder:
    """The responder, or 404; 410 Gone for one whose account was erased (`privacy.erasure`): its
    row is only the incident record's anonymous stand-in, and nothing may bring it back."""
    try:
        responder = await service.load(session, responder_id)
    except service.ResponderNotFound:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"id: no responder {responder_id}") from None
    if responder.deleted_at is not None:
        erased = f"{responder.deleted_at:%Y-%m-%d %H:%M} UTC"
        rule = f"was erased at their request ({erased}); only an anonymous stand-in is kept"
        raise HTTPException(status.HTTP_410_GONE, f"id: responder {responder_id} {rule}")
    return responder


def _conflict(exc: service.RegistryConflict) -> HTTPException:
    return fail(status.HTTP_409_CONFLICT, exc.field, exc.rule)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ResponderCreated, responses=errors(409))
async def register(
    body: ResponderCreate,
    _: Principal = Depends(admin_only),
    session: AsyncSession = Depends(get_session),
    settings: Settings = Depends(get_app_settings),
    store: LiveLocationStore = Depends(live_store),
) -> ResponderCreated:
    """Register a responder with certificates and team; the response carries their token once."""
    try:
        responder, token = await service.register(session, body, settings)
    except service.RegistryConflict as exc:
        raise _conflict(exc) from None
    out = await service.describe(responder, store, settings)
    return ResponderCreated(**out.model_dump(), token=token)


@router.post("/import", response_model=ImportReport, responses=errors(409))
async def import_csv(
    request: Request,
    _: Principal = Depends(admin_only),
    session: AsyncSession = Depends(get_session),
    settings: Settings = Depends(get_app_settings),
    store: LiveLocationStore = Depends(live_store),
) -> ImportReport:
    """Bulk registration from CSV (UTF-8, one row per certificate); bad rows reported, good rows kept."""
    raw = await request.body()
    if len(raw) > MAX_IMPORT_BYTES:
        raise fail(status.HTTP_413_REQUEST_ENTITY_TOO_LARGE, "file", f"at most {MAX_IMPORT_BYTES} bytes")
    try:  # validating 100,000 rows takes seconds: off the event loop, so dispatch goes on meanwhile
        parsed, errors, rows = await asyncio.to_thread(parse_csv, raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise fail(422, "file", "must be UTF-8 text") from None
    except (CsvFileError, ValueError) as exc:
        raise HTTPException(422, str(exc)) from None
    try:
        created, updated, unchanged = await service.import_responders(session, store, parsed, settings)
    except service.RegistryConflict as exc:
        raise _conflict(exc) from None
    return ImportReport(rows=rows, created=created, updated=updated, unchanged=unchanged, errors=errors)


@router.get("/live")
async def live_positions(
    bbox: str | None = Query(
        None,
        description="min_lat,min_lng,max_lat,max_lng in `crs`: only the positions in this view, reading "
        "only the pages of the live index under it (at most `live_map_pages_max` of them: a wider box "
        "is refused with 422). Without it, every position.",
    ),
    crs: Crs = Crs.wgs84,
    _: Principal = Depends(dispatch_readers),
    session: AsyncSession = Depends(get_session),
    settings: Settings = Depends(get_app_settings),
    store: LiveLocationStore = Depends(live_store),
) -> dict[str, Any]:
    """Live on-duty positions as GeoJSON, for the dispatcher's map."""
    box = _parse_bbox(bbox, crs, store, settings.live_map_pages_max) if bbox else None
    positions = await store.positions(box)
    categories: dict[str, str] = {}
    ids = [uuid.UUID(p.responder_id) for p in positions]
    for start in range(0, len(ids), 5000):
        query = select(Responder.id, Responder.category).where(Responder.id.in_(ids[start : start + 5000]))
        categories.update({str(i): c for i, c in (await session.execute(query)).all()})
    now = time.time()
    features = []
    for p in positions:
        lat, lng = from_wgs84(p.lat, p.lng, crs)
        props = {
            "id": p.responder_id,
            "category": categories.get(p.responder_id),
            "mode": p.mode,
            "dispatchable": now - p.ts <= settings.staleness_s,
            "ts": p.ts,
        }
        point = {"type": "Point", "coordinates": [lng, lat]}
        features.append({"type": "Feature", "geometry": point, "properties": props})
    return {"type": "FeatureCollection", "crs_name": crs.value, "features": features}


def _parse_bbox(text: str, crs: Crs, store: LiveLocationStore, pages_max: int) -> Box:
    """The map's view in WGS-84, refused (422) when malformed or when it would read more than
    `pages_max` pages of the live index (a province zoomed out: the client zooms in)."""
    try:
        min_lat, min_lng, max_lat, max_lng = (float(v) for v in text.split(","))
    except ValueError:
        raise fail(422, "bbox", "must be four numbers: min_lat,min_lng,max_lat,max_lng") from None
    if not (-90 <= min_lat <= max_lat <= 90 and -180 <= min_lng <= max_lng <= 180):
        raise fail(422, "bbox", "must be ordered min ≤ max within [-90, 90] and [-180, 180]")
    lo = to_wgs84(min_lat, min_lng, crs)
    hi = to_wgs84(max_lat, max_lng, crs)
    box = Box(lo[0], lo[1], hi[0], hi[1])
    pages = box_area_cells(*box, store.page_resolution)
    if pages > pages_max:
        rule = f"covers about {pages:,.0f} pages of the live index"
        raise fail(422, "bbox", f"{rule}, more than live_map_pages_max ({pages_max:,}): zoom in")
    return box


@router.get("/{responder_id}", response_model=ResponderOut, responses=errors(410))
async def get_responder(
    responder_id: uuid.UUID,
    crs: Crs = Crs.wgs84,
    principal: Principal = Depends(registry_readers),
    session: AsyncSession = Depends(get_session),
    settings: Settings = Depends(get_app_settings),
    store: LiveLocationStore = Depends(live_store),
) -> ResponderOut:
    """Profile, certificates, duty, live position, and whether (or why not) dispatchable now.

    Admins also see `acceptance`: the answers to alerts and the learned chance of accepting, per
    band. Only admins, who run the programme (coaching, shift planning): not dispatchers, who
    should not weigh people by it in the middle of an incident (matching already does), and not
    the responder, whose answer should not be steered by a score about themself.
    """
    ensure_self(principal, responder_id)
    responder = await load_or_fail(session, responder_id)
    out = await service.describe(responder, store, settings, crs)
    if principal.role is Role.admin:
        learned = await AcceptanceStore.from_settings(settings).profile(session, responder)
        out.acceptance = {
            band: AcceptanceOut(
                accepted=t.accepted, declined=t.declined, unanswered=t.unanswered, estimate=round(p, 4)
            )
            for band, (t, p) in learned.items()
        }
    return out


@router.patch("/{responder_id}", response_model=ResponderOut, responses=errors(409, 410))
async def update_responder(
    responder_id: uuid.UUID,
    body: ResponderUpdate,
    _: Principal = Depends(admin_only),
    session: AsyncSession = Depends(get_session),
    settings: Settings = Depends(get_app_settings),
    store: LiveLocationStore = Depends(live_store),
) -> ResponderOut:
    """Change profile fields; `certificates` replaces the list (a lapse drops the live position at once)."""
    try:
        responder = await load_or_fail(session, responder_id)
        responder = await service.update(session, store, responder, body, settings)
    except service.RegistryConflict as exc:
        raise _conflict(exc) from None
    return await service.describe(responder, store, settings)


@router.put("/{responder_id}/duty", response_model=ResponderOut, responses=errors(409, 410))
async def set_duty(
    responder_id: uuid.UUID,
    body: DutyIn,
    principal: Principal = Depends(admin_or_self),
    session: AsyncSession = Depends(get_session),
    settings: Settings = Depends(get_app_settings),
    store: LiveLocationStore = Depends(live_store),
) -> ResponderOut:
    """On or off duty; off duty deletes the live position."""
    ensure_self(principal, responder_id)
    responder = await load_or_fail(session, responder_id)
    try:
        responder = await service.set_duty(session, store, responder, body.on_duty, settings)
    except service.RegistryConflict as exc:
        raise _conflict(exc) from None
    return await service.describe(responder, store, settings)


@router.post(
    "/{responder_id}/token",
    response_model=TokenOut,
    status_code=status.HTTP_201_CREATED,
    responses=errors(409, 410),
)
async def rotate_token(
    responder_id: uuid.UUID,
    request: Request,
    principal: Principal = Depends(admin_or_self),
    session: AsyncSession = Depends(get_session),
) -> TokenOut:
    """A fresh token (new phone, lost phone); every earlier token of the responder is revoked and
    the sockets opened with them are closed within seconds."""
    ensure_self(principal, responder_id)
    try:
        token = await service.rotate_token(session, await load_or_fail(session, responder_id))
    except service.RegistryConflict as exc:
        raise _conflict(exc) from None
    await announce_session_revoked(request, session)
    return TokenOut(token=token)


@router.post("/{responder_id}/deactivate", response_model=ResponderOut, responses=errors(410))
async def deactivate(
    responder_id: uuid.UUID,
    request: Request,
    _: Principal = Depends(admin_only),
    session: AsyncSession = Depends(get_session),
    settings: Settings = Depends(get_app_settings),
    store: LiveLocationStore = Depends(live_store),
) -> ResponderOut:
    """End duty, revoke tokens (closing their sockets), drop the position; the record stays for the
    incident history."""
    responder = await service.deactivate(session, store, await load_or_fail(session, responder_id), settings)
    await announce_session_revoked(request, session)
    return await service.describe(responder, store, settings)


# --- location ingest ----------------------------------------------------------------------------
async def _json_body(request: Request) -> Any:
    try:
        return pydantic_core.from_json(await request.body())  # ~3x faster than json.loads on batches
    except ValueError:
        raise fail(422, "body", "must be a JSON object") from None


def _validated(model: type[ModelT], body: Any) -> ModelT:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from None


@locations_router.post(
    "", response_model=IngestResult, openapi_extra=json_body(LocationUpdate, LocationBatch)
)
async def post_locations(
    request: Request,
    principal: Principal = Depends(location_posters),
    settings: Settings = Depends(get_app_settings),
    store: LiveLocationStore = Depends(live_store),
    observer: FixObserver = Depends(fix_observer),
) -> IngestResult:
    """One update (a responder for itself) or `{"updates": [...]}` (admin or gateway, up to the limit).

    Out-of-order and too-old updates are dropped and counted (`stale`); in a batch, updates from the
    future are listed in `rejected` while the others are stored; alone, such an update is a 422.
    """
    body = await _json_body(request)
    if isinstance(body, dict) and "updates" in body:
        if principal.role is Role.responder:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "a responder posts only its own single update")
        updates = body["updates"]
        if isinstance(updates, list) and len(updates) > settings.location_batch_max:
            limit = settings.location_batch_max
            raise fail(status.HTTP_413_REQUEST_ENTITY_TOO_LARGE, "updates", f"at most {limit} per batch")
        batch = _validated(LocationBatch, body)
        return await ingest_batch(store, settings, batch.updates, observer=observer)
    update = _validated(LocationUpdate, body)
    if principal.role is Role.responder:
        if update.responder_id is not None and update.responder_id != principal.responder_id:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, "responder_id: a responder may only post its own position"
            )
        responder_id = principal.responder_id
    elif update.responder_id is None:
        raise fail(422, "responder_id", "required when an admin or gateway posts a single update")
    else:
        responder_id = update.responder_id
    try:
        outcome = await ingest_location(store, settings, str(responder_id), update, observer=observer)
    except LocationRejected as exc:
        raise fail(422, exc.field, exc.rule) from None
    return IngestResult(**{outcome.value: 1})
