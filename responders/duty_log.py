"""The record of time on duty: one `duty_sessions` row per stretch, opened and closed in the same
transaction as the duty change itself, so the service record (`service_record/`) can never count
time the registry did not show as on duty. No position is kept with it."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import func, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from responders.models import DutySession


async def open_session(session: AsyncSession, responder_id: uuid.UUID, at: datetime) -> None:
    """Start a stretch on duty; a stretch already open (at most one, a unique index) is kept."""
    await session.execute(
        insert(DutySession)
        .values(responder_id=responder_id, started_at=at)
        .on_conflict_do_nothing(index_elements=["responder_id"], index_where=DutySession.ended_at.is_(None))
    )


async def close_session(session: AsyncSession, responder_id: uuid.UUID, at: datetime) -> None:
    """End the open stretch, if any (never before it started)."""
    await session.execute(
        update(DutySession)
        .where(DutySession.responder_id == responder_id, DutySession.ended_at.is_(None))
        .values(ended_at=func.greatest(DutySession.started_at, at))
    )
