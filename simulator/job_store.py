"""Study jobs in PostgreSQL: queued → running → done | failed, with progress and the result.

Any worker answers a poll from here, whichever worker runs the job. The worker that holds a job
(queued or running) touches it every couple of seconds; one silent for `SILENT_S` is reported
failed, since its worker died with it.
Finished jobs are dropped after `study_job_keep_s`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import undefer

from simulator.models import StudyJobRow

ACTIVE = ("queued", "running")
SILENT_S = 30.0


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class JobState:
    """What a poll answers: the state, and the result once done."""

    id: uuid.UUID
    status: str
    progress: float
    error: str | None = None
    media_type: str | None = None
    result: bytes | None = None


class JobStore:
    """Reads and writes study jobs, each call in a short session of its own."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def create(self, what: str, keep_s: float) -> uuid.UUID:
        """A new queued job; finished jobs older than `keep_s` go at the same time."""
        now = _now()
        row = StudyJobRow(what=what, status="queued", progress=0.0, created_at=now, updated_at=now)
        async with self.sessions() as session:
            await session.execute(
                delete(StudyJobRow).where(
                    StudyJobRow.status.not_in(ACTIVE),
                    StudyJobRow.updated_at < now - timedelta(seconds=keep_s),
                )
            )
            session.add(row)
            await session.commit()
        return row.id

    async def update(self, job_id: uuid.UUID, **values: object) -> None:
        async with self.sessions() as session:
            await session.execute(
                update(StudyJobRow).where(StudyJobRow.id == job_id).values(**values, updated_at=_now())
            )
            await session.commit()

    async def touch(self, job_ids: list[uuid.UUID]) -> None:
        """The holding worker is alive: keep these jobs from being taken for lost."""
        if job_ids:
            async with self.sessions() as session:
                await session.execute(
                    update(StudyJobRow)
                    .where(StudyJobRow.id.in_(job_ids), StudyJobRow.status.in_(ACTIVE))
                    .values(updated_at=_now())
                )
                await session.commit()

    async def get(self, job_id: uuid.UUID) -> JobState | None:
        async with self.sessions() as session:
            row = await session.scalar(
                select(StudyJobRow).options(undefer(StudyJobRow.result)).where(StudyJobRow.id == job_id)
            )
        if row is None:
            return None
        silent_s = (_now() - row.updated_at).total_seconds()
        if row.status in ACTIVE and silent_s > SILENT_S:
            return JobState(
                row.id, "failed", row.progress, "the worker running this study stopped; run it again"
            )
        return JobState(row.id, row.status, row.progress, row.error, row.media_type, row.result)
