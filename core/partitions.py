"""Monthly partitions of the record's two growing tables, made ahead of time by the service itself.

`alerts` and `incident_events` grow with every incident and are never updated once an incident is
over, yet the hot queries only ever read recent rows (an open incident's alerts and history, a
console's missed events, a responder's pending alerts). Declarative partitioning by month lets the
planner skip every old month (each query names a time bound) and lets an operator detach or
archive a whole month at once.

Partitions are made here rather than by `pg_partman` (Debian's `postgresql-15-partman` exists,
but an extension and its scheduler would be one more thing every run, test and managed database
must install and configure, for what is one `CREATE TABLE` a month): the migration makes the months
its data covers plus `MONTHS_AHEAD`, and every worker, at start and daily, makes the months ahead
again (`keep_partitions`). That step is idempotent (`CREATE TABLE IF NOT EXISTS`) and serialised
across workers by an advisory lock. A DEFAULT partition takes any row whose month has no partition
(a clock far off, or the service down for months), so an insert never fails; a month whose rows
already sit in DEFAULT is then not made (PostgreSQL would refuse it), and this is logged.

Months are UTC calendar months: the bounds are instants, so a time zone changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from core.db import Database

log = logging.getLogger(__name__)
MONTHS_AHEAD = 3
"""Months made beyond the current one (by the migration, and by each worker daily)."""
KEEP_EVERY_S = 86_400.0
RETRY_AFTER_S = 300.0
LOCK_KEY = 20_0016  # pg_advisory_xact_lock: one worker at a time makes partitions
LOCK_TIMEOUT = "5s"  # making a partition briefly locks its table: never queue behind a long query


@dataclass(frozen=True, slots=True)
class MonthlyTable:
    """A table partitioned by month on `key` (a timestamptz column)."""

    name: str
    key: str

    @property
    def default(self) -> str:
        return f"{self.name}_default"


ALERTS = MonthlyTable("alerts", "opened_at")
"""By the incident's opening time: an incident's alerts share a partition, and the unique
(incident, responder) pair stays enforceable (a unique key must contain the partition key)."""
EVENTS = MonthlyTable("incident_events", "ts")
"""By the event's own time: what a console missed is found by time."""
TABLES = (ALERTS, EVENTS)


def month_of(at: datetime) -> datetime:
    """The first instant (UTC) of the month holding `at`."""
    at = at.astimezone(UTC)
    return datetime(at.year, at.month, 1, tzinfo=UTC)


def add_months(month: datetime, count: int) -> datetime:
    index = month.year * 12 + month.month - 1 + count
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def months_between(first: datetime, last: datetime) -> list[datetime]:
    """Every month from the one holding `first` to the one holding `last`, both included."""
    months, month = [], month_of(first)
    while month <= month_of(last):
        months.append(month)
        month = add_months(month, 1)
    return months


def partition_name(table: MonthlyTable, month: datetime) -> str:
    return f"{table.name}_{month.year:04d}_{month.month:02d}"


def create_month_sql(table: MonthlyTable, month: datetime) -> str:
    return (
        f"CREATE TABLE IF NOT EXISTS {partition_name(table, month)} PARTITION OF {table.name}"
        f" FOR VALUES FROM ('{month.isoformat()}') TO ('{add_months(month, 1).isoformat()}')"
    )


def create_default_sql(table: MonthlyTable) -> str:
    return f"CREATE TABLE IF NOT EXISTS {table.default} PARTITION OF {table.name} DEFAULT"


def default_holds_sql(table: MonthlyTable, month: datetime) -> str:
    """Whether DEFAULT holds rows of this month (then the month cannot be made)."""
    return (
        f"SELECT EXISTS (SELECT 1 FROM {table.default} WHERE {table.key} >= '{month.isoformat()}'"
        f" AND {table.key} < '{add_months(month, 1).isoformat()}')"
    )


async def ensure_months(
    connection: AsyncConnection, now: datetime, months_ahead: int = MONTHS_AHEAD
) -> list[str]:
    """Make this month's partitions and the next `months_ahead` of every partitioned table (in the
    caller's transaction, under the advisory lock); returns the names made now."""
    await connection.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
    await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
    made = []

    async def exists(name: str) -> bool:  # asked first: a worker finding all in place locks no table
        return bool((await connection.execute(text("SELECT to_regclass(:name)"), {"name": name})).scalar())

    for table in TABLES:
        if not await exists(table.default):
            await connection.execute(text(create_default_sql(table)))
            made.append(table.default)
        for month in months_between(now, add_months(now, months_ahead)):
            name = partition_name(table, month)
            if await exists(name):
                continue
            if (await connection.execute(text(default_holds_sql(table, month)))).scalar():
                log.error(
                    "partition %s not made: %s holds rows of that month (move them out, then make it)",
                    name,
                    table.default,
                )
                continue
            await connection.execute(text(create_month_sql(table, month)))
            made.append(name)
    return made


async def keep_partitions(db: Database, months_ahead: int = MONTHS_AHEAD) -> None:
    """At start and then daily, until cancelled: the months ahead exist (any worker may do it)."""
    while True:
        try:
            async with db.engine.begin() as connection:
                made = await ensure_months(connection, datetime.now(UTC), months_ahead)
            if made:
                log.info("partitions made ahead: %s", ", ".join(made))
            await asyncio.sleep(KEEP_EVERY_S)
        except asyncio.CancelledError:
            raise
        except Exception:  # the database is down, or a lock was busy: try again soon
            log.warning(
                "making partitions ahead failed; trying again in %.0f s", RETRY_AFTER_S, exc_info=True
            )
            await asyncio.sleep(RETRY_AFTER_S)
