"""The retention of on-duty positions: erase those kept in incident timelines once past
`position_retention_days`, and nothing else.

What a position is, and from when it counts, is `privacy.positions`; how a row keeps and loses
one is `privacy.kept`. The job walks the record a month at a time, from the first incident to the
cutoff, and erases in batches of `RETENTION_BATCH` rows, each batch its own short transaction:
every statement names the month it reads (the partition key, `alerts.opened_at` and
`incident_events.ts`), so PostgreSQL reads that month's partition only, and no lock is held long
on a record the dispatch clock also writes. Rows already erased no longer match, so a run that
stops half-way (a restart) is finished by the next.

Every API worker runs `run_retention`; a Redis lease per period (`core.lease`, never released:
it lapses with the period) lets one of them do each round. Two rounds overlapping (a round longer
than the period) would be harmless: batches skip rows another holds, and erasing twice is a no-op.
`dispatch privacy retention [--dry-run]` runs one round by hand.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, func, select

from core.config import Settings
from core.db import Database
from core.lease import Lease
from core.outage import log_failed_round
from core.partitions import add_months, months_between
from core.redis import Keys, RedisClient
from dispatch.events import CLOCK_SLACK
from dispatch.models import Incident
from privacy.kept import ALERT_POSITIONS, EVENT_POSITIONS, KeptPositions
from privacy.positions import retention_cutoff

log = logging.getLogger(__name__)
RETENTION_BATCH = 1000
"""Rows erased per transaction: a few milliseconds of locks on a month's partition at a time."""


@dataclass(frozen=True, slots=True)
class RetentionReport:
    """What a round erased (or, dry, would erase): rows whose position went, per table."""

    cutoff: datetime
    alerts: int
    events: int
    dry_run: bool


def month_windows(first: datetime, cutoff: datetime) -> list[tuple[datetime | None, datetime]]:
    """[from, to) windows of whole UTC months (the partitions' bounds) from the month holding
    `first` up to `cutoff`. The first is open below: a row filed before the first incident's
    month (a clock far off, in the DEFAULT partition) is not left behind."""
    months = months_between(first, cutoff) if first < cutoff else []
    windows = [(month if i else None, min(add_months(month, 1), cutoff)) for i, month in enumerate(months)]
    return [(start, end) for start, end in windows if start is None or start < end]  # a cutoff on the 1st


def _within(kept: KeptPositions, start: datetime | None, end: datetime) -> list[ColumnElement[bool]]:
    return [kept.key < end, *([kept.key >= start] if start is not None else [])]


async def _first_incident(db: Database) -> datetime | None:
    """When the record begins: the first incident's opening, less the events' clock slack
    (every alert and event of an incident is filed at or after it)."""
    async with db.sessions() as session:
        first = (await session.execute(select(func.min(Incident.created_at)))).scalar_one()
    return None if first is None else first - CLOCK_SLACK


async def _erase_window(
    db: Database, kept: KeptPositions, window: tuple[datetime | None, datetime], batch: int
) -> int:
    """Erase a month's kept positions of one table, a batch per transaction; how many rows."""
    erased = 0
    while True:
        async with db.sessions() as session:
            done = await kept.erase_batch(session, batch, *_within(kept, *window))
            await session.commit()
        erased += done
        if done < batch:
            return erased


async def _count_window(db: Database, kept: KeptPositions, window: tuple[datetime | None, datetime]) -> int:
    async with db.sessions() as session:
        return await kept.count(session, *_within(kept, *window))


async def erase_past_retention(
    db: Database,
    retention_days: float,
    *,
    now: datetime | None = None,
    dry_run: bool = False,
    batch: int = RETENTION_BATCH,
) -> RetentionReport:
    """One round: erase (or, `dry_run`, count) the kept positions older than the retention."""
    cutoff = retention_cutoff(now or datetime.now(UTC), retention_days)
    first = await _first_incident(db)
    windows = month_windows(first, cutoff) if first is not None else []
    totals = [
        sum([await _count_window(db, kept, w) for w in windows])
        if dry_run
        else sum([await _erase_window(db, kept, w, batch) for w in windows])
        for kept in (ALERT_POSITIONS, EVENT_POSITIONS)
    ]
    return RetentionReport(cutoff, *totals, dry_run=dry_run)


def lease_key(keys: Keys) -> str:
    return keys("privacy", "retention")


async def retention_round(
    db: Database, redis: RedisClient, keys: Keys, settings: Settings
) -> RetentionReport | None:
    """A round if no worker has run one this period; None when another has."""
    period_s = settings.position_retention_every_s
    if not await Lease(redis, lease_key(keys), period_s).acquire():
        return None
    report = await erase_past_retention(db, settings.position_retention_days)
    if report.alerts or report.events:
        log.info(
            "positions past their retention erased",
            extra={"cutoff": report.cutoff.isoformat(), "alerts": report.alerts, "events": report.events},
        )
    return report


async def run_retention(db: Database, redis: RedisClient, keys: Keys, settings: Settings) -> None:
    """Loop until cancelled: a round at start and every `position_retention_every_s`; a failing
    round (a store down) is logged and retried next period, never fatal."""
    while True:
        try:
            await retention_round(db, redis, keys, settings)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log_failed_round(log, "position retention", exc)
        await asyncio.sleep(settings.position_retention_every_s)
