"""AED registry logic: nearest available AEDs, edits with history, problem reports, imports.

Every change writes an `aed_events` entry in the same transaction as the change, so the history
and the registry never disagree. Callers (router, CLI, dispatcher) own the session; functions
here flush and leave the commit to them, except where noted.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from aed_registry.availability import HoursPolicy, pick_available
from aed_registry.importers import DEFAULT_NAME, AedRecord, ImportReport, dedupe_records, merge_record
from aed_registry.models import BLOCKING_REPORT_KINDS, AedEvent, AedReport
from aed_registry.store import AedRow, AedStore
from core.config import Settings
from geo.distance import haversine_m
from geo.reach import ReachModel, TravelMode

NAME_MATCH_M = 10.0  # a row without external_id updates the same-named AED within this distance


class AedNotFound(LookupError):
    """No AED (or report) with that id."""


class AedConflict(ValueError):
    """The change clashes with stored data (e.g. a second AED with the same external_id)."""


@dataclass(frozen=True, slots=True)
class AvailableAed:
    """An AED dispatch may send a responder for: open (or hours unknown and allowed) and not blocked."""

    id: str
    external_id: str | None
    name: str
    lat: float
    lng: float
    distance_m: float
    walk_eta_s: float  # reach model: activation + distance x circuity / walking speed
    open_now: bool
    access: str
    location_detail: str | None
    opening_hours: str | None
    hours_known: bool = True  # False: hours missing/unparseable, offered by the "unknown" policy


async def nearby_available(
    session: AsyncSession,
    lat: float,
    lng: float,
    *,
    at: datetime,
    limit: int = 10,
    max_distance_m: float | None = None,
    settings: Settings,
) -> list[AvailableAed]:
    """The `limit` nearest AEDs usable at `at`, nearest first.

    The GiST KNN scan returns active, unblocked AEDs in distance order in growing batches; opening
    hours are evaluated in Python (they cannot be in SQL) until `limit` are found or the scan runs
    out (or passes `max_distance_m`). Distances are great-circle metres from `geo`, the same the
    dispatcher's reach model uses.
    """
    if limit < 1:
        return []
    policy = HoursPolicy.from_settings(settings)
    model = ReachModel.from_settings(settings)
    store = AedStore(session)
    picked, offset, batch = [], 0, max(4 * limit, 32)
    while len(picked) < limit:
        spots = await store.nearest_unblocked(
            lat, lng, offset=offset, limit=batch, max_distance_m=max_distance_m
        )
        picked += pick_available(spots, at, policy, limit - len(picked))
        if len(spots) < batch:
            break
        offset, batch = offset + batch, batch * 2
    out = []
    for spot in picked:
        distance = haversine_m(lat, lng, spot.lat, spot.lng)
        if max_distance_m is not None and distance > max_distance_m:
            continue
        known = policy.open_state(spot.opening_hours, at) is not None
        out.append(
            AvailableAed(
                id=spot.id,
                external_id=spot.external_id,
                name=spot.name,
                lat=spot.lat,
                lng=spot.lng,
                distance_m=distance,
                walk_eta_s=model.eta_s(distance, TravelMode.walk),
                open_now=True,
                access=spot.access,
                location_detail=spot.location_detail,
                opening_hours=spot.opening_hours,
                hours_known=known,
            )
        )
    out.sort(key=lambda a: a.distance_m)
    return out


# --- registry edits --------------------------------------------------------------------------------
async def get_aed(session: AsyncSession, aed_id: uuid.UUID) -> AedRow:
    row = await AedStore(session).get(aed_id)
    if row is None:
        raise AedNotFound(f"no AED with id {aed_id}")
    return row


async def create_aed(session: AsyncSession, record: AedRecord, actor: str) -> AedRow:
    """Register one AED; an `external_id` already in the registry is a conflict, not an update."""
    store = AedStore(session)
    if record.external_id and await store.by_external_ids([record.external_id]):
        raise AedConflict(f"external_id: an AED with external_id '{record.external_id}' already exists")
    row, changes = merge_record(None, record)
    await store.upsert([row])
    await store.append_events([{"aed_id": row["id"], "kind": "created", "actor": actor, "data": changes}])
    return await get_aed(session, uuid.UUID(row["id"]))


async def update_aed(session: AsyncSession, aed_id: uuid.UUID, record: AedRecord, actor: str) -> AedRow:
    """Apply the fields set in `record`; records what changed (a status change is its own event kind)."""
    store = AedStore(session)
    current = await get_aed(session, aed_id)
    if record.external_id and record.external_id != current.values["external_id"]:
        clash = await store.by_external_ids([record.external_id])
        if clash:
            raise AedConflict(f"external_id: '{record.external_id}' belongs to another AED")
    row, changes = merge_record(current, record)
    if changes:
        await store.upsert([row])
        kind = "status" if set(changes) == {"status"} else "updated"
        await store.append_events([{"aed_id": current.id, "kind": kind, "actor": actor, "data": changes}])
    return await get_aed(session, aed_id)


async def remove_aed(session: AsyncSession, aed_id: uuid.UUID, actor: str) -> AedRow:
    """Deleting means status `removed`: the AED and its history stay for the record."""
    return await update_aed(session, aed_id, AedRecord(line=0, status="removed"), actor)


async def history(session: AsyncSession, aed_id: uuid.UUID) -> list[AedEvent]:
    await get_aed(session, aed_id)
    return await AedStore(session).events_of(aed_id)


# --- problem reports -------------------------------------------------------------------------------
async def report_problem(
    session: AsyncSession, aed_id: uuid.UUID, kind: str, note: str | None, actor: str
) -> AedReport:
    """Record a problem found on site; `missing`/`broken` take the AED out of `nearby` until resolved."""
    await get_aed(session, aed_id)
    store = AedStore(session)
    report = await store.add_report(aed_id, kind, note, actor)
    data = {
        "report_id": str(report.id),
        "kind": kind,
        "note": note,
        "blocking": kind in BLOCKING_REPORT_KINDS,
    }
    await store.append_events(
        [{"aed_id": str(aed_id), "kind": "report_opened", "actor": actor, "data": data}]
    )
    return report


async def resolve_report(
    session: AsyncSession, aed_id: uuid.UUID, report_id: uuid.UUID, resolution: str | None, actor: str
) -> AedReport:
    """Close a report (admin); resolving twice is refused so the first resolution stays on record."""
    store = AedStore(session)
    report = await store.get_report(aed_id, report_id)
    if report is None:
        raise AedNotFound(f"AED {aed_id} has no report {report_id}")
    if report.resolved_at is not None:
        raise AedConflict(f"report_id: report {report_id} was already resolved at {report.resolved_at}")
    report.resolved_at, report.resolved_by, report.resolution = datetime.now(UTC), actor, resolution
    data = {"report_id": str(report_id), "kind": report.kind, "resolution": resolution}
    await store.append_events(
        [{"aed_id": str(aed_id), "kind": "report_resolved", "actor": actor, "data": data}]
    )
    await session.flush()
    return report


# --- imports ---------------------------------------------------------------------------------------
async def import_records(
    session: AsyncSession,
    report: ImportReport,
    actor: str,
    *,
    source: str | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Upsert the parsed good rows of an import: by `external_id`, else by name within 10 m.

    Rows repeated inside the file collapse onto the last one (reported as duplicates). Rows that
    change nothing are counted as unchanged and leave no history entry. The caller commits.
    """
    store = AedStore(session)
    await store.lock_for_import()
    records, duplicates = dedupe_records(report.records, NAME_MATCH_M)
    report.duplicates.extend(duplicates)
    by_id = await store.by_external_ids([r.external_id for r in records if r.external_id])
    nameless = [r for r in records if not r.external_id]
    by_name = await store.by_name_near(
        [(r.name or DEFAULT_NAME, r.lat, r.lng) for r in nameless], NAME_MATCH_M
    )
    matched: dict[int, AedRow] = {id(r): by_name[i] for i, r in enumerate(nameless) if i in by_name}
    rows: list[Mapping[str, Any]] = []
    events: list[Mapping[str, Any]] = []
    for record in records:
        if source and not record.source:
            record = record.with_source(source)
        existing = by_id.get(record.external_id or "") or matched.get(id(record))
        row, changes = merge_record(existing, record)
        if existing is not None and not changes:
            report.unchanged += 1
            continue
        rows.append(row)
        kind = "imported" if existing is None else "import_updated"
        events.append({"aed_id": row["id"], "kind": kind, "actor": actor, "data": changes})
        report.created += existing is None
        report.updated += existing is not None
    await store.upsert(rows, on_progress=on_progress)
    await store.append_events(events)
    return report
