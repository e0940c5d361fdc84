"""AED registry logic: nearest available AEDs, edits with history, problem reports, imports.

Every change writes an `aed_events` entry in the same transaction as the change, so the history
and the registry never disagree. Callers (router, CLI, dispatcher) own the session; functions
here flush and leave the commit to them, except where noted.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from aed_registry.availability import HoursPolicy, pick_available
from aed_registry.importers import DEFAULT_NAME, AedRecord, ImportReport, dedupe_records, merge_record
from aed_registry.models import BLOCKING_REPORT_KINDS, AedEvent, AedReport
from aed_registry.store import AedRow, AedStore
from aed_registry.trust import (
    LIMIT_WINDOW,
    Reporter,
    availability_state,
    confirming_reports,
    seconds_until_allowed,
)
from core.config import Settings
from geo.distance import haversine_m
from geo.reach import ReachModel, TravelMode

ABSENT = "absent"  # the state before an AED is registered (availability audit)
NAME_MATCH_M = 10.0  # a row without external_id updates the same-named AED within this distance


class AedNotFound(LookupError):
    """No AED (or report) with that id."""


class AedConflict(ValueError):
    """The change clashes with stored data (e.g. a second AED with the same external_id)."""


class ReportLimited(Exception):
    """Too many reports in the last hour (by this reporter, or on this AED)."""

    def __init__(self, rule: str, retry_after_s: int) -> None:
        super().__init__(f"report: {rule}; retry after {retry_after_s} s")
        self.retry_after_s = retry_after_s


@dataclass(frozen=True, slots=True)
class ReportLimits:
    """The trust rule's numbers (from `Settings`)."""

    confirm_window: timedelta
    per_reporter: int
    per_aed: int

    @classmethod
    def from_settings(cls, settings: Settings) -> ReportLimits:
        return cls(
            timedelta(seconds=settings.aed_report_confirm_window_s),
            settings.aed_reports_per_reporter_per_hour,
            settings.aed_reports_per_aed_per_hour,
        )


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
    await _audit_if_changed(store, uuid.UUID(row["id"]), ABSENT, actor, "registered")
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
        before = await availability_of(store, aed_id)
        await store.upsert([row])
        kind = "status" if set(changes) == {"status"} else "updated"
        await store.append_events([{"aed_id": current.id, "kind": kind, "actor": actor, "data": changes}])
        await _audit_if_changed(store, aed_id, before, actor, f"status set to {row['status']}")
    return await get_aed(session, aed_id)


async def remove_aed(session: AsyncSession, aed_id: uuid.UUID, actor: str) -> AedRow:
    """Deleting means status `removed`: the AED and its history stay for the record."""
    return await update_aed(session, aed_id, AedRecord(line=0, status="removed"), actor)


async def history(session: AsyncSession, aed_id: uuid.UUID) -> list[AedEvent]:
    await get_aed(session, aed_id)
    return await AedStore(session).events_of(aed_id)


# --- problem reports -------------------------------------------------------------------------------
async def availability_of(store: AedStore, aed_id: uuid.UUID) -> str:
    """The AED's state for dispatch now (`trust.availability_state`)."""
    row = await store.get(aed_id)
    if row is None:
        raise AedNotFound(f"no AED with id {aed_id}")
    blocked = await store.confirmed_blocking_kinds([str(aed_id)])
    return availability_state(row.values["status"], blocked.get(str(aed_id)))


async def _audit_if_changed(
    store: AedStore, aed_id: uuid.UUID, before: str, actor: str, reason: str, report_id: str | None = None
) -> None:
    after = await availability_of(store, aed_id)
    if after != before:
        await store.append_availability(
            [{"aed_id": aed_id, "actor": actor, "reason": reason, "before": before, "after": after,
              "report_id": report_id}]
        )  # fmt: skip


async def _check_report_limits(
    store: AedStore, aed_id: uuid.UUID, kind: str, reporter: Reporter, limits: ReportLimits, now: datetime
) -> None:
    """One open report of a kind per reporter and AED (409); so many per reporter and per AED an
    hour (429 with the seconds to wait). Admins are not limited."""
    if reporter.trusted:
        return
    for open_report in await store.reports_of(aed_id, open_only=True):
        if open_report.reporter == reporter.identity and open_report.kind == kind:
            raise AedConflict(
                f"kind: you already reported this AED {kind} (report {open_report.id}, still open)"
            )
    since = now - LIMIT_WINDOW
    for scope, times, limit in (
        ("reporter", await store.report_times(reporter=reporter.identity, since=since), limits.per_reporter),
        ("AED", await store.report_times(aed_id=aed_id, since=since), limits.per_aed),
    ):
        wait = seconds_until_allowed(times, limit, now)
        if wait is not None:
            raise ReportLimited(f"at most {limit} reports per {scope} an hour", wait)


async def report_problem(
    session: AsyncSession,
    aed_id: uuid.UUID,
    kind: str,
    note: str | None,
    reporter: Reporter,
    limits: ReportLimits,
) -> AedReport:
    """Record a problem found on site. A `missing`/`broken` report takes the AED out of `nearby`
    (until resolved) once it counts: an admin's at once, anyone else's when a second independent
    reporter confirms it within `limits.confirm_window` (`trust.py`)."""
    store = AedStore(session)
    await store.lock(aed_id)
    before = await availability_of(store, aed_id)
    now = datetime.now(UTC)
    await _check_report_limits(store, aed_id, kind, reporter, limits, now)
    confirmed = confirming_reports(
        reporter, kind, await store.open_blocking(aed_id), now, limits.confirm_window
    )
    report = await store.add_report(
        aed_id, kind, note, reporter.actor, reporter=reporter.identity,
        confirmed_at=now if confirmed is not None else None,
    )  # fmt: skip
    await store.confirm([r.id for r in confirmed or ()], now)
    data = {
        "report_id": str(report.id),
        "kind": kind,
        "note": note,
        "blocking": kind in BLOCKING_REPORT_KINDS,
        "confirmed": confirmed is not None,
        "confirms": [r.id for r in confirmed or ()],
    }
    await store.append_events(
        [{"aed_id": str(aed_id), "kind": "report_opened", "actor": reporter.actor, "data": data}]
    )
    why = (
        "admin report"
        if reporter.trusted
        else f"confirmed by {len(confirmed or ()) + 1} independent reporters"
    )
    await _audit_if_changed(store, aed_id, before, reporter.actor, f"{kind} report ({why})", str(report.id))
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
    before = await availability_of(store, aed_id)
    report.resolved_at, report.resolved_by, report.resolution = datetime.now(UTC), actor, resolution
    data = {"report_id": str(report_id), "kind": report.kind, "resolution": resolution}
    await store.append_events(
        [{"aed_id": str(aed_id), "kind": "report_resolved", "actor": actor, "data": data}]
    )
    await session.flush()
    await _audit_if_changed(
        store,
        aed_id,
        before,
        actor,
        f"{report.kind} report resolved: {resolution or 'no note'}",
        str(report_id),
    )
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
    status_changes: list[tuple[str, str | None, str]] = []  # aed id, stored status (None: new), new
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
        if existing is None or "status" in changes:
            status_changes.append((row["id"], existing.values["status"] if existing else None, row["status"]))
        report.created += existing is None
        report.updated += existing is not None
    await store.upsert(rows, on_progress=on_progress)
    await store.append_events(events)
    await store.append_availability(await _import_availability(store, status_changes, actor))
    return report


async def _import_availability(
    store: AedStore, status_changes: list[tuple[str, str | None, str]], actor: str
) -> list[dict[str, Any]]:
    """Audit rows for the imported AEDs whose state for dispatch changed (new ones included)."""
    blocked = await store.confirmed_blocking_kinds([aed_id for aed_id, old, _ in status_changes if old])
    audit = []
    for aed_id, old, new in status_changes:
        before = ABSENT if old is None else availability_state(old, blocked.get(aed_id))
        after = availability_state(new, blocked.get(aed_id))
        if before != after:
            reason = "registered by import" if old is None else f"status set to {new} by import"
            audit.append(
                {"aed_id": aed_id, "actor": actor, "reason": reason, "before": before, "after": after}
            )
    return audit
