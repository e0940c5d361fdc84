"""The incident event log: append in the same transaction as the change, publish after commit."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.fanout import Fanout
from dispatch.frames import event_frame
from dispatch.models import Incident, IncidentEvent

CLOCK_SLACK = timedelta(minutes=10)
"""Events are stamped by the clock of the worker that logged them, before the commit: a time bound
on the log (which lets PostgreSQL skip old months) is widened by this much, for clocks a little
apart and transactions that took a while."""


def record(session: AsyncSession, incident_id: uuid.UUID, kind: str, **data: Any) -> IncidentEvent:
    """Add one event to the session (it commits with the change it describes)."""
    event = IncidentEvent(incident_id=incident_id, ts=datetime.now(UTC), kind=kind, data=data)
    session.add(event)
    return event


async def publish(fanout: Fanout, events: Iterable[IncidentEvent]) -> None:
    """Push committed events to every dispatcher console, on every worker."""
    for e in events:
        await fanout.to_dispatchers(event_frame(str(e.incident_id), e.id, e.ts, e.kind, e.data))


async def history(session: AsyncSession, incident: Incident) -> list[IncidentEvent]:
    """An incident's log, oldest first; nothing of it is older than the incident."""
    query = select(IncidentEvent).where(
        IncidentEvent.incident_id == incident.id, IncidentEvent.ts >= incident.created_at - CLOCK_SLACK
    )
    return list((await session.execute(query.order_by(IncidentEvent.id))).scalars())


async def since(session: AsyncSession, after_id: int, heard_at: datetime, limit: int) -> list[IncidentEvent]:
    """Events logged after `after_id`, oldest first: what a console that last heard the log at
    `heard_at` missed during an outage (nothing it missed is older than that, less `CLOCK_SLACK`)."""
    query = select(IncidentEvent).where(
        IncidentEvent.id > after_id, IncidentEvent.ts >= heard_at - CLOCK_SLACK
    )
    return list((await session.execute(query.order_by(IncidentEvent.id).limit(limit))).scalars())


async def newest_id(session: AsyncSession) -> int:
    return int((await session.execute(select(func.coalesce(func.max(IncidentEvent.id), 0)))).scalar_one())
