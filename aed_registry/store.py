"""The AED registry's PostGIS store: devices, their problem reports and their history.

Queries that run on every dispatch (nearest unblocked AEDs) are hand-written SQL so the plan is
obvious: a GiST index scan in `<->` order, filtered on status and on the partial index of open
blocking reports. Bulk writes for imports go through multi-row statements, never one ORM object
per row.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from geoalchemy2 import Geography, Geometry
from sqlalchemy import String, Uuid, any_, bindparam, cast, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from aed_registry.availability import AedSpot
from aed_registry.models import BLOCKING_REPORT_KINDS, Aed, AedAvailabilityChange, AedEvent, AedReport
from aed_registry.trust import OpenReport

# Columns an import or an edit may set (besides the location, kept as lat/lng in Python).
FIELDS = (
    "external_id", "name", "address", "location_detail", "opening_hours", "opening_hours_error",
    "access", "status", "contact", "source", "last_checked",
)  # fmt: skip
_BLOCKED = ", ".join(f"'{k}'" for k in BLOCKING_REPORT_KINDS)
# The per-dispatch query goes straight to asyncpg (prepared once per connection, no SQLAlchemy
# compile or row processing): $1 lng, $2 lat, $3 limit, $4 offset, $5 max metres.
_POINT = "ST_SetSRID(ST_MakePoint($1, $2), 4326)::geography"
_SELECT = f"""
SELECT a.id, a.external_id, a.name, ST_Y(a.location::geometry) AS lat, ST_X(a.location::geometry) AS lng,
       a.opening_hours, a.access, a.location_detail
FROM aeds a
WHERE a.status = 'active'
  AND NOT EXISTS (SELECT 1 FROM aed_reports r
                  WHERE r.aed_id = a.id AND r.resolved_at IS NULL AND r.confirmed_at IS NOT NULL
                    AND r.kind IN ({_BLOCKED}))
  {{within}}"""
# PostGIS 3.3's geography KNN scan fails ("index returned tuples in wrong order", a 500) when an
# AED lies a hair from the point: measured up to ~1e-11 degrees in general (AED at (0, 0), point
# (2.2e-16, 2.6e-12)) and up to ~0.1 m across the antimeridian (179.9999999 vs -180); the index's
# float32 box distance then exceeds the exact distance it rechecks. So the KNN query carries a
# guard, one GiST probe evaluated once before the scan starts: when any AED is within KNN_SAFE_M of
# the point, the scan is never run and the query returns nothing; the same rows ordered by the
# exact distance (which cannot fail) are then asked for. The guard costs the usual query ~30 us;
# the second query runs only when the first found nothing.
KNN_SAFE_M = 2.0
_NEAR_HAIR = f"EXISTS (SELECT 1 FROM aeds h WHERE ST_DWithin(h.location, {_POINT}, {KNN_SAFE_M}, false))"
_KNN = f"AND NOT {_NEAR_HAIR}\nORDER BY a.location <-> {_POINT}\nLIMIT $3 OFFSET $4"
_EXACT = f"AND {_NEAR_HAIR}\nORDER BY ST_Distance(a.location, {_POINT}, false), a.id\nLIMIT $3 OFFSET $4"
# ST_DWithin makes the index scan stop at the radius instead of walking the whole table.
_WITHIN = f"AND ST_DWithin(a.location, {_POINT}, $5, false)"
_KNN_QUERY = {
    bounded: _SELECT.format(within=_WITHIN if bounded else "") + "\n" + _KNN for bounded in (False, True)
}
_EXACT_QUERY = {
    bounded: _SELECT.format(within=_WITHIN if bounded else "") + "\n" + _EXACT for bounded in (False, True)
}
_ALL_UNBLOCKED = _SELECT.format(within="") + "\nORDER BY a.id"
_LAT = func.ST_Y(cast(Aed.location, Geometry))
_LNG = func.ST_X(cast(Aed.location, Geometry))
_UPSERT_COLUMNS = (
    ("id", "uuid"), ("external_id", "text"), ("name", "text"), ("address", "text"),
    ("location_detail", "text"), ("opening_hours", "text"), ("opening_hours_error", "text"),
    ("access", "text"), ("status", "text"), ("contact", "text"), ("source", "text"),
    ("last_checked", "timestamptz"), ("created_at", "timestamptz"), ("updated_at", "timestamptz"),
    ("lat", "float8"), ("lng", "float8"),
)  # fmt: skip
_STORED = [name for name, _ in _UPSERT_COLUMNS if name not in ("lat", "lng")]
_UPSERT = text(
    f"""
    INSERT INTO aeds ({", ".join(_STORED)}, location)
    SELECT {", ".join(f"u.{n}" for n in _STORED)}, ST_SetSRID(ST_MakePoint(u.lng, u.lat), 4326)::geography
    FROM unnest({", ".join(f"CAST(:{n} AS {t}[])" for n, t in _UPSERT_COLUMNS)})
         AS u({", ".join(n for n, _ in _UPSERT_COLUMNS)})
    ON CONFLICT (id) DO UPDATE SET
    {", ".join(f"{n} = EXCLUDED.{n}" for n in [*_STORED, "location"] if n not in ("id", "created_at"))}
    """
)
_APPEND_EVENTS = text(
    """
    INSERT INTO aed_events (aed_id, kind, actor, at, data)
    SELECT u.aed_id, u.kind, u.actor, :at, u.data::jsonb
    FROM unnest(CAST(:aed_id AS uuid[]), CAST(:kind AS text[]), CAST(:actor AS text[]), CAST(:data AS text[]))
         AS u(aed_id, kind, actor, data)
    """
)


@dataclass(frozen=True, slots=True)
class AedRow:
    """An AED's stored values as plain data (what merges, diffs and responses work on)."""

    id: str
    lat: float
    lng: float
    values: Mapping[str, Any]  # FIELDS plus created_at/updated_at


class AedStore:
    """Reads and writes AEDs, reports and events through one session; the caller commits."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # --- reading -------------------------------------------------------------------------------
    async def nearest_unblocked(
        self, lat: float, lng: float, *, offset: int, limit: int, max_distance_m: float | None
    ) -> list[AedSpot]:
        """Active AEDs without open missing/broken reports, nearest first (GiST KNN)."""
        args: list[Any] = [lng, lat, limit, offset]
        if max_distance_m is not None:
            args.append(max_distance_m * (1 + 1e-6) + 0.01)  # sphere vs haversine rounding slack
        connection = await (await self.session.connection()).get_raw_connection()
        driver = connection.driver_connection
        assert driver is not None
        bounded = max_distance_m is not None
        rows = await driver.fetch(_KNN_QUERY[bounded], *args)
        if not rows:  # nothing, or a point a hair from an AED (the guard stopped the KNN scan)
            rows = await driver.fetch(_EXACT_QUERY[bounded], *args)
        return [AedSpot(str(r[0]), r[1], r[2], r[3], r[4], r[5], r[6], r[7]) for r in rows]

    async def all_unblocked(self) -> list[AedSpot]:
        """Every active AED without an open missing/broken report (a planner's whole-city study)."""
        connection = await (await self.session.connection()).get_raw_connection()
        driver = connection.driver_connection
        assert driver is not None
        rows = await driver.fetch(_ALL_UNBLOCKED)
        return [AedSpot(str(r[0]), r[1], r[2], r[3], r[4], r[5], r[6], r[7]) for r in rows]

    async def get(self, aed_id: uuid.UUID) -> AedRow | None:
        rows = await self._rows(Aed.id == aed_id)
        return rows[0] if rows else None

    async def in_bbox(
        self, min_lat: float, min_lng: float, max_lat: float, max_lng: float, *, limit: int
    ) -> list[AedRow]:
        """AEDs inside a lat/lng box (for maps); removed ones are left out."""
        box = func.ST_MakeEnvelope(min_lng, min_lat, max_lng, max_lat, 4326)
        # `&&` on a padded geography box uses the GiST index (great-circle edges bulge, hence the pad);
        # the planar test then keeps exactly the lat/lng rectangle a map shows.
        pad = max(0.001, 0.1 * max(max_lat - min_lat, max_lng - min_lng))
        coarse = cast(func.ST_Expand(box, pad), Geography)
        return await self._rows(
            Aed.location.op("&&")(coarse),
            func.ST_Intersects(cast(Aed.location, Geometry), box),
            Aed.status != "removed",
            limit=limit,
        )

    async def by_external_ids(self, external_ids: Sequence[str]) -> dict[str, AedRow]:
        if not external_ids:
            return {}
        rows = await self._rows(
            Aed.external_id == any_(bindparam("ext_ids", list(external_ids), ARRAY(String)))
        )
        return {r.values["external_id"]: r for r in rows}

    async def by_name_near(
        self, wanted: Sequence[tuple[str, float, float]], within_m: float
    ) -> dict[int, AedRow]:
        """For each (name, lat, lng), the nearest stored AED of that name within `within_m` (by index)."""
        if not wanted:
            return {}
        names, lats, lngs = zip(*wanted, strict=True)
        found = await self.session.execute(
            text(
                """
                SELECT w.i, m.id
                FROM unnest(CAST(:names AS text[]), CAST(:lats AS float8[]), CAST(:lngs AS float8[]))
                     WITH ORDINALITY AS w(name, lat, lng, i)
                CROSS JOIN LATERAL (
                    SELECT a.id FROM aeds a
                    WHERE a.name = w.name AND ST_DWithin(
                        a.location, ST_SetSRID(ST_MakePoint(w.lng, w.lat), 4326)::geography, :within, false)
                    ORDER BY ST_Distance(
                        a.location, ST_SetSRID(ST_MakePoint(w.lng, w.lat), 4326)::geography, false), a.id
                    LIMIT 1) m
                """
            ).bindparams(
                bindparam("names", list(names)), bindparam("lats", list(lats)), bindparam("lngs", list(lngs))
            ),
            {"within": within_m},
        )
        matches = {int(i) - 1: aed_id for i, aed_id in found.all()}
        wanted_ids = bindparam("aed_ids", list(matches.values()), ARRAY(Uuid))
        rows = {r.id: r for r in await self._rows(Aed.id == any_(wanted_ids))} if matches else {}
        return {i: rows[str(aed_id)] for i, aed_id in matches.items()}

    async def _rows(self, *where: Any, limit: int | None = None) -> list[AedRow]:
        cols = [getattr(Aed, f) for f in (*FIELDS, "created_at", "updated_at")]
        query = select(Aed.id, _LAT.label("lat"), _LNG.label("lng"), *cols).where(*where).order_by(Aed.id)
        if limit is not None:
            query = query.limit(limit)
        result = (await self.session.execute(query)).mappings().all()
        return [
            AedRow(
                str(m["id"]),
                m["lat"],
                m["lng"],
                {k: v for k, v in m.items() if k not in ("id", "lat", "lng")},
            )
            for m in result
        ]

    # --- writing -------------------------------------------------------------------------------
    async def lock_for_import(self) -> None:
        """Serialise imports (transaction-scoped) so two uploads never race on the same rows."""
        await self.session.execute(text("SELECT pg_advisory_xact_lock(hashtext('aed_registry.import'))"))

    async def upsert(
        self,
        rows: Sequence[Mapping[str, Any]],
        chunk: int = 5000,
        on_progress: Callable[[int], None] | None = None,
    ) -> None:
        """Write full rows (`id`, `lat`, `lng`, FIELDS, timestamps): insert new ids, overwrite known ones.

        One `INSERT ... SELECT FROM unnest(arrays) ON CONFLICT (id) DO UPDATE` per chunk: a fixed
        statement with one array per column, so 23,000 rows cost a few round trips, not a compile each.
        """
        now = datetime.now(UTC)
        for start in range(0, len(rows), chunk):
            part = rows[start : start + chunk]
            params: dict[str, Any] = {name: [row.get(name) for row in part] for name, _ in _UPSERT_COLUMNS}
            params["id"] = [uuid.UUID(str(row["id"])) for row in part]
            params["created_at"] = [row.get("created_at") or now for row in part]
            params["updated_at"] = [now] * len(part)
            await self.session.execute(_UPSERT, params)
            if on_progress is not None:
                on_progress(start + len(part))

    async def append_events(self, events: Sequence[Mapping[str, Any]], chunk: int = 5000) -> None:
        """Add history entries (`aed_id`, `kind`, `actor`, `data`); history is never rewritten."""
        now = datetime.now(UTC)
        for start in range(0, len(events), chunk):
            part = events[start : start + chunk]
            await self.session.execute(
                _APPEND_EVENTS,
                {
                    "aed_id": [uuid.UUID(str(e["aed_id"])) for e in part],
                    "kind": [e["kind"] for e in part],
                    "actor": [e["actor"] for e in part],
                    "data": [json.dumps(e.get("data") or {}, default=str) for e in part],
                    "at": now,
                },
            )

    async def events_of(self, aed_id: uuid.UUID) -> list[AedEvent]:
        query = select(AedEvent).where(AedEvent.aed_id == aed_id).order_by(AedEvent.id)
        return list((await self.session.execute(query)).scalars())

    # --- reports -------------------------------------------------------------------------------
    async def lock(self, aed_id: uuid.UUID) -> None:
        """Hold the AED's row until commit: concurrent reports on one AED see each other."""
        await self.session.execute(select(Aed.id).where(Aed.id == aed_id).with_for_update())

    async def add_report(
        self,
        aed_id: uuid.UUID,
        kind: str,
        note: str | None,
        reported_by: str,
        *,
        reporter: str | None = None,
        confirmed_at: datetime | None = None,
    ) -> AedReport:
        report = AedReport(
            aed_id=aed_id,
            kind=kind,
            note=note,
            reported_by=reported_by,
            reporter=reporter,
            confirmed_at=confirmed_at,
        )
        self.session.add(report)
        await self.session.flush()
        return report

    async def open_blocking(self, aed_id: uuid.UUID) -> list[OpenReport]:
        """Open missing/broken reports of an AED, oldest first."""
        query = (
            select(AedReport.id, AedReport.reporter, AedReport.created_at, AedReport.confirmed_at)
            .where(
                AedReport.aed_id == aed_id,
                AedReport.resolved_at.is_(None),
                AedReport.kind.in_(BLOCKING_REPORT_KINDS),
            )
            .order_by(AedReport.created_at)
        )
        rows = (await self.session.execute(query)).all()
        return [OpenReport(str(r.id), r.reporter, r.created_at, r.confirmed_at is not None) for r in rows]

    async def confirm(self, report_ids: Sequence[str], at: datetime) -> None:
        if report_ids:
            await self.session.execute(
                update(AedReport)
                .where(AedReport.id.in_([uuid.UUID(i) for i in report_ids]), AedReport.confirmed_at.is_(None))
                .values(confirmed_at=at)
            )

    async def confirmed_blocking_kinds(self, aed_ids: Sequence[str]) -> dict[str, str]:
        """For each AED with a confirmed open missing/broken report, the kind of the oldest."""
        if not aed_ids:
            return {}
        query = (
            select(AedReport.aed_id, AedReport.kind)
            .where(
                AedReport.aed_id.in_([uuid.UUID(str(i)) for i in aed_ids]),
                AedReport.resolved_at.is_(None),
                AedReport.confirmed_at.is_not(None),
                AedReport.kind.in_(BLOCKING_REPORT_KINDS),
            )
            .order_by(AedReport.created_at.desc())
        )
        return {str(aed_id): kind for aed_id, kind in (await self.session.execute(query)).all()}

    async def report_times(
        self, *, reporter: str | None = None, aed_id: uuid.UUID | None = None, since: datetime
    ) -> list[datetime]:
        """When the reports of one reporter, or on one AED, were filed since `since`."""
        query = select(AedReport.created_at).where(AedReport.created_at >= since)
        if reporter is not None:
            query = query.where(AedReport.reporter == reporter)
        if aed_id is not None:
            query = query.where(AedReport.aed_id == aed_id)
        return list((await self.session.execute(query)).scalars())

    # --- availability audit ---------------------------------------------------------------------
    async def append_availability(self, changes: Sequence[Mapping[str, Any]]) -> None:
        """Audit rows (`aed_id`, `actor`, `reason`, `before`, `after`, `report_id`?); never rewritten."""
        if changes:
            now = datetime.now(UTC)
            await self.session.execute(
                insert(AedAvailabilityChange),
                [
                    {
                        "aed_id": uuid.UUID(str(c["aed_id"])),
                        "at": now,
                        "actor": c["actor"],
                        "reason": c["reason"],
                        "before": c["before"],
                        "after": c["after"],
                        "report_id": uuid.UUID(str(c["report_id"])) if c.get("report_id") else None,
                    }
                    for c in changes
                ],
            )

    async def availability_log(self, aed_id: uuid.UUID) -> list[AedAvailabilityChange]:
        query = (
            select(AedAvailabilityChange)
            .where(AedAvailabilityChange.aed_id == aed_id)
            .order_by(AedAvailabilityChange.id)
        )
        return list((await self.session.execute(query)).scalars())

    async def reports_of(self, aed_id: uuid.UUID, *, open_only: bool = False) -> list[AedReport]:
        query = select(AedReport).where(AedReport.aed_id == aed_id).order_by(AedReport.created_at)
        if open_only:
            query = query.where(AedReport.resolved_at.is_(None))
        return list((await self.session.execute(query)).scalars())

    async def get_report(self, aed_id: uuid.UUID, report_id: uuid.UUID) -> AedReport | None:
        query = select(AedReport).where(AedReport.id == report_id, AedReport.aed_id == aed_id)
        return (await self.session.execute(query)).scalar_one_or_none()
