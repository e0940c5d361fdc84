"""Reading the service record from the registry and the incident record, and tallying it with
`service_record.tally`: one responder's record, and an export month by month.

Sources: `duty_sessions` (written with every duty change, `responders.duty_log`) and the accepted
alerts (`answered_at` set, status `accepted`, `en_route`, `on_scene` or — stood down or closed
after accepting — `cancelled`). An accepted alert ended at its cancellation (`updated_at` of a
`cancelled` alert), else at its incident's `closed_at`, else it is still going.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ARRAY,
    BindParameter,
    ColumnElement,
    Uuid,
    and_,
    any_,
    bindparam,
    case,
    or_,
    select,
    union,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dispatch.models import ENGAGED, Alert, Incident
from responders.models import DutySession, Responder, Team
from service_record.export import Member
from service_record.tally import ENGAGEMENT_CAP, DutyStretch, ServiceTally, Turnout, Window, tally
from service_record.window import months

ATTENDED = (*ENGAGED, "cancelled")  # statuses an accepted alert can have (with `answered_at` set)
CHUNK = 1000  # responders tallied per round of queries in an export: bounds memory, not the file


def ids_array(responder_ids: Sequence[uuid.UUID]) -> BindParameter[list[uuid.UUID]]:
    """The ids as one array parameter (`= ANY(:ids)`): an `IN` of a thousand ids cost more to
    compile than the query took to run."""
    return bindparam("ids", list(responder_ids), type_=ARRAY(Uuid))


def _overlapping(window: Window) -> ColumnElement[bool]:
    return and_(
        DutySession.started_at < window.end,
        or_(DutySession.ended_at.is_(None), DutySession.ended_at > window.start),
    )


def _accepted_near(window: Window) -> ColumnElement[bool]:
    """Accepted alerts whose engagement can reach into the window: accepted in it or up to the cap
    before. `opened_at` (the incident's opening, before any accept) bounds the partitions read."""
    return and_(
        Alert.answered_at.is_not(None),
        Alert.status.in_(ATTENDED),
        Alert.answered_at >= window.start - ENGAGEMENT_CAP,
        Alert.answered_at < window.end,
        Alert.opened_at < window.end,
    )


async def stretches_of(
    session: AsyncSession, responder_ids: Sequence[uuid.UUID], window: Window
) -> dict[uuid.UUID, list[DutyStretch]]:
    """Each responder's duty stretches that overlap the window."""
    rows = await session.execute(
        select(DutySession.responder_id, DutySession.started_at, DutySession.ended_at).where(
            DutySession.responder_id == any_(ids_array(responder_ids)), _overlapping(window)
        )
    )
    out: dict[uuid.UUID, list[DutyStretch]] = defaultdict(list)
    for responder_id, started_at, ended_at in rows.tuples():
        out[responder_id].append(DutyStretch(started_at, ended_at))
    return out


async def turnouts_of(
    session: AsyncSession, responder_ids: Sequence[uuid.UUID], window: Window
) -> dict[uuid.UUID, list[Turnout]]:
    """Each responder's accepted alerts whose engagement can fall in the window."""
    ended = case((Alert.status == "cancelled", Alert.updated_at), else_=Incident.closed_at)
    rows = await session.execute(
        select(Alert.responder_id, Alert.answered_at, ended, Alert.on_scene_at)
        .join(Incident, Incident.id == Alert.incident_id)
        .where(Alert.responder_id == any_(ids_array(responder_ids)), _accepted_near(window))
    )
    out: dict[uuid.UUID, list[Turnout]] = defaultdict(list)
    for responder_id, answered_at, ended_at, on_scene_at in rows.tuples():
        out[responder_id].append(Turnout(answered_at, ended_at, on_scene_at))
    return out


async def record_of(
    session: AsyncSession, responder_id: uuid.UUID, window: Window, now: datetime
) -> ServiceTally:
    """One responder's service in the window."""
    duty = await stretches_of(session, [responder_id], window)
    runs = await turnouts_of(session, [responder_id], window)
    return tally(duty[responder_id], runs[responder_id], window, now)


async def _active_in(session: AsyncSession, window: Window) -> list[uuid.UUID]:
    """Responders with a duty stretch or an accepted alert that can count in the window."""
    on_duty = select(DutySession.responder_id).where(_overlapping(window))
    turned_out = select(Alert.responder_id).where(_accepted_near(window))
    ids = (await session.execute(union(on_duty, turned_out))).scalars()
    return sorted(ids, key=str)


async def _members(session: AsyncSession, responder_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Member]:
    rows = await session.execute(
        select(Responder.id, Responder.external_id, Responder.name, Responder.deleted_at, Team.path)
        .outerjoin(Team, Team.id == Responder.team_id)
        .where(Responder.id.in_(list(responder_ids)))
    )
    return {
        rid: Member(rid, None, None, path) if erased else Member(rid, external_id, name, path)
        for rid, external_id, name, erased, path in rows
    }


async def monthly_tallies(
    sessions: async_sessionmaker[AsyncSession], window: Window, tz: ZoneInfo, now: datetime
) -> AsyncIterator[tuple[str, Member, ServiceTally]]:
    """(month, responder, tally) for every responder who served in each calendar month of the
    window, month by month and by responder id; a month is read `CHUNK` responders at a time, so
    an export of the whole city never holds more than that in memory."""
    for label, month in months(window, tz):
        async with sessions() as session:
            active = await _active_in(session, month)
            for chunk in (active[i : i + CHUNK] for i in range(0, len(active), CHUNK)):
                members = await _members(session, chunk)
                duty = await stretches_of(session, chunk, month)
                runs = await turnouts_of(session, chunk, month)
                for rid in chunk:
                    record = tally(duty[rid], runs[rid], month, now)
                    if not record.empty:
                        yield label, members[rid], record
