"""Writing the marks a trip's fixes crossed (en_route, aed_picked_up, on_scene) into the record.

Each mark is one conditional UPDATE of the alert (`WHERE <mark>_at IS NULL` and the alert still
engaged), so a mark is set and logged once whichever worker saw the fix, however many times it is
seen, and whether the fix or a tap came first: the UPDATE that changes nothing logs nothing. The
marks of one fix are written in one transaction in trip order, after the alert's row lock, so the
log never shows `on_scene` before `en_route`, also with several workers writing for one trip.

The time kept on the alert is the fix's own (when the phone was there), never later than now (a
phone's clock may run a little ahead). The event keeps the proof: the fix's time, distance and
accuracy and where it was (`lat`/`lng`: a position on duty, erased after the retention by
`privacy`). Status moves like a tap's: accepted → en_route → on_scene; `aed_picked_up` keeps it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, case, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch import events
from dispatch.fanout import Fanout
from dispatch.geofence import Crossing, Fix, Mark, Point
from dispatch.models import ENGAGED, Alert, Incident, IncidentEvent

_MARK_COLUMN = {
    "en_route": Alert.en_route_at,
    "aed_picked_up": Alert.aed_picked_up_at,
    "on_scene": Alert.on_scene_at,
}
_MOVES_STATUS_FROM: dict[Mark, tuple[str, ...]] = {
    "en_route": ("accepted",),
    "aed_picked_up": (),
    "on_scene": ("accepted", "en_route"),
}
"""The statuses a mark moves on to its own name (a tap's `dispatch.alerts.NEXT_STATUS`)."""


@dataclass(frozen=True, slots=True)
class TripKey:
    """An accepted alert as the record knows it (`opened_at` lets PostgreSQL skip other months)."""

    alert_id: uuid.UUID
    opened_at: datetime
    incident_id: uuid.UUID
    responder_id: str


@dataclass(frozen=True, slots=True)
class Marked:
    """A mark just set: its logged event, whose phone to tell, and the time kept on the alert."""

    event: IncidentEvent
    responder_id: str
    at: datetime


def mark_frame(alert_id: str, mark: str, at: datetime, source: str) -> dict[str, Any]:
    """What the responder's phone is told when a mark is set (by its fixes or its tap)."""
    return {"type": "mark", "alert_id": alert_id, "mark": mark, "at": at.isoformat(), "source": source}


def _status_after(mark: Mark) -> ColumnElement[Any] | Any:
    moves = _MOVES_STATUS_FROM[mark]
    if not moves:
        return Alert.status
    return case((Alert.status.in_(moves), mark), else_=Alert.status)


async def _set_mark(session: AsyncSession, trip: TripKey, mark: Mark, at: datetime) -> Alert | None:
    """The alert with `mark` set now, or None when it was set before (or the alert ended)."""
    column = _MARK_COLUMN[mark]
    conditions = [
        Alert.id == trip.alert_id,
        Alert.opened_at == trip.opened_at,
        column.is_(None),
        Alert.status.in_(ENGAGED),
    ]
    if mark == "aed_picked_up":
        conditions.append(Alert.role == "fetch_aed")
    query = (
        update(Alert)
        .where(*conditions)
        .values({column: at, Alert.status: _status_after(mark), Alert.updated_at: datetime.now(UTC)})
        .returning(Alert)
        .execution_options(synchronize_session=False)
    )
    return (await session.execute(query)).scalar_one_or_none()


async def set_origin(session: AsyncSession, trip: TripKey, origin: Point) -> None:
    """Where the trip starts, when the accept found no fresh position: the first fix after it."""
    await session.execute(
        update(Alert)
        .where(Alert.id == trip.alert_id, Alert.opened_at == trip.opened_at, Alert.accepted_lat.is_(None))
        .values(accepted_lat=origin.lat, accepted_lng=origin.lng)
        .execution_options(synchronize_session=False)
    )


async def record_crossings(
    session: AsyncSession, trip: TripKey, crossings: tuple[Crossing, ...], fix: Fix
) -> list[Marked]:
    """Set each crossing's mark (in order) and log it as `source: auto`; those that were news,
    to publish once the caller commits. Nothing once the incident closed.

    The incident's row is locked first (FOR NO KEY UPDATE), the order answers and closing take
    them in: this alert's row locked first, then waiting for the incident a closing holds while
    it waits for this alert, would deadlock."""
    incident = (
        await session.execute(
            select(Incident).where(Incident.id == trip.incident_id).with_for_update(key_share=True)
        )
    ).scalar_one_or_none()
    if incident is None or incident.status != "open":
        return []
    fix_time = datetime.fromtimestamp(fix.ts, UTC)
    at = min(fix_time, datetime.now(UTC))
    logged = []
    for crossing in crossings:
        alert = await _set_mark(session, trip, crossing.mark, at)
        if alert is None:
            continue
        event = events.record(
            session,
            trip.incident_id,
            crossing.mark,
            alert_id=str(alert.id),
            responder_id=str(alert.responder_id),
            role=alert.role,
            source="auto",
            ts=fix_time.isoformat(),
            distance_m=round(crossing.distance_m, 1),
            accuracy_m=fix.accuracy_m,
            lat=round(fix.lat, 7),
            lng=round(fix.lng, 7),
        )
        logged.append(Marked(event, str(alert.responder_id), at))
    return logged


async def announce(fanout: Fanout, logged: list[Marked]) -> None:
    """After the commit: the consoles get the events, the phone its marks."""
    await events.publish(fanout, [m.event for m in logged])
    for m in logged:
        frame = mark_frame(m.event.data["alert_id"], m.event.kind, m.at, m.event.data["source"])
        await fanout.to_responder(m.responder_id, frame)
