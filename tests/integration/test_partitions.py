"""`alerts` and `incident_events` by month: the migration converts them keeping their rows (and
back), months are made ahead, rows land in their month (and in DEFAULT when it has none), and the
hot queries, exactly as the service sends them, read only the months they need."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from alembic import command
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from core.db import Database
from core.partitions import (
    ALERTS,
    EVENTS,
    MONTHS_AHEAD,
    add_months,
    create_month_sql,
    ensure_months,
    month_of,
    partition_name,
)
from dispatch import events
from dispatch.models import Incident
from dispatch.service import alert_views, alerts_of
from tests.integration.test_migrations import _config, scratch_db  # noqa: F401  (a fixture)
from tests.support.db import fresh_database, plain_dsn

pytestmark = pytest.mark.integration
NOW = datetime.now(UTC)
AUGUST = datetime(2026, 8, 14, 9, 30, tzinfo=UTC)  # months before any test run's "now"
OCTOBER = datetime(2026, 10, 2, 23, 59, tzinfo=UTC)
PAST = [datetime(2025, m, 1, tzinfo=UTC) for m in range(1, 7)]  # old months the hot queries must skip


async def _connect(url: str) -> asyncpg.Connection:
    return await asyncpg.connect(plain_dsn(url, make_url(url).database))


async def add_incident(conn: asyncpg.Connection, opened: datetime) -> uuid.UUID:
    incident = uuid.uuid4()
    await conn.execute(
        "INSERT INTO incidents (id, category, status, location, lat, lng, reach_s, coverage,"
        " escalation_step, created_by, created_at) VALUES ($1, 'choking', 'open',"
        " 'SRID=4326;POINT(114.06 22.54)', 22.54, 114.06, 300, '{}', 0, 'test', $2)",
        incident,
        opened,
    )
    return incident


async def add_responder(conn: asyncpg.Connection) -> uuid.UUID:
    responder = uuid.uuid4()
    await conn.execute(
        "INSERT INTO responders (id, external_id, name, category, mode, active, on_duty, created_at,"
        " updated_at) VALUES ($1, $2, 'Li Wei', 'sanitation_worker', 'walk', true, true, now(), now())",
        responder,
        "P-" + responder.hex[:8],
    )
    return responder


async def add_alert(
    conn: asyncpg.Connection, incident: uuid.UUID, responder: uuid.UUID, at: datetime, **extra: Any
) -> uuid.UUID:
    alert = uuid.uuid4()
    columns = {
        "id": alert,
        "incident_id": incident,
        "responder_id": responder,
        "role": "undecided",
        "eta_s": 100.0,
        "distance_m": 120.0,
        "status": "sent",
        "batch": 0,
        "created_at": at,
        "expires_at": at + timedelta(minutes=2),
        "updated_at": at,
        **extra,
    }
    names = ", ".join(columns)
    marks = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    await conn.execute(f"INSERT INTO alerts ({names}) VALUES ({marks})", *columns.values())
    return alert


async def add_event(conn: asyncpg.Connection, incident: uuid.UUID, at: datetime) -> int:
    return int(
        await conn.fetchval(
            "INSERT INTO incident_events (incident_id, ts, kind, data) VALUES ($1, $2, 'opened', '{}')"
            " RETURNING id",
            incident,
            at,
        )
    )


async def where_rows_are(conn: asyncpg.Connection, table: str) -> dict[str, str]:
    rows = await conn.fetch(f"SELECT id::text, tableoid::regclass::text AS part FROM {table}")
    return {r["id"]: r["part"] for r in rows}


async def partitions(conn: asyncpg.Connection, table: str) -> set[str]:
    rows = await conn.fetch(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = $1::regclass",
        table,
    )
    return {r["relname"] for r in rows}


async def relkind(conn: asyncpg.Connection, table: str) -> str:
    return str(await conn.fetchval("SELECT relkind::text FROM pg_class WHERE oid = $1::regclass", table))


def test_the_migration_partitions_with_the_data_and_converts_back(scratch_db: str) -> None:  # noqa: F811
    cfg = _config(scratch_db)
    command.upgrade(cfg, "0015")

    async def before() -> dict[str, Any]:
        conn = await _connect(scratch_db)
        try:
            responder = await add_responder(conn)
            august, october = await add_incident(conn, AUGUST), await add_incident(conn, OCTOBER)
            alerts = {
                "aug": await add_alert(conn, august, responder, AUGUST + timedelta(seconds=5)),
                # sent the next month, still the August incident's: stays with its incident
                "aug_late": await add_alert(
                    conn, august, await add_responder(conn), datetime(2026, 9, 1, tzinfo=UTC)
                ),
                "oct": await add_alert(conn, october, responder, OCTOBER + timedelta(seconds=5)),
            }
            await conn.execute(
                "INSERT INTO alert_codes (id, alert_id, code_hash, channel, created_at)"
                " VALUES ($1, $2, 'h', 'sms', now())",
                uuid.uuid4(),
                alerts["oct"],
            )
            logged = [await add_event(conn, august, AUGUST), await add_event(conn, october, OCTOBER)]
            return {"alerts": alerts, "events": logged, "incidents": (august, october)}
        finally:
            await conn.close()

    made = asyncio.run(before())
    command.upgrade(cfg, "0016")

    async def after_upgrade() -> None:
        conn = await _connect(scratch_db)
        try:
            assert await relkind(conn, "alerts") == "p" and await relkind(conn, "incident_events") == "p"
            a = {k: str(v) for k, v in made["alerts"].items()}
            placed = await where_rows_are(conn, "alerts")
            assert placed == {
                a["aug"]: "alerts_2026_08",
                a["aug_late"]: "alerts_2026_08",
                a["oct"]: "alerts_2026_10",
            }
            assert await where_rows_are(conn, "incident_events") == {
                str(made["events"][0]): "incident_events_2026_08",
                str(made["events"][1]): "incident_events_2026_10",
            }
            assert await conn.fetchval("SELECT to_regclass('ix_incidents_open_created')::text")
            opened = await conn.fetchval("SELECT alert_opened_at FROM alert_codes")
            assert opened == OCTOBER  # the code follows its alert into the new key
            for table in (ALERTS, EVENTS):  # from the oldest row's month to MONTHS_AHEAD past now
                months = {partition_name(table, m) for m in _months(AUGUST, add_months(NOW, MONTHS_AHEAD))}
                assert await partitions(conn, table.name) == months | {table.default}
            # ids go on from the same sequence, and the unique pair still holds
            newer = await add_event(conn, made["incidents"][1], NOW)
            assert newer > max(made["events"])
            with pytest.raises(asyncpg.UniqueViolationError):
                await conn.execute(
                    "INSERT INTO alerts (id, incident_id, responder_id, opened_at, role, eta_s,"
                    " distance_m, status, batch, created_at, expires_at, updated_at)"
                    " SELECT gen_random_uuid(), incident_id, responder_id, opened_at, role, eta_s,"
                    " distance_m, status, batch, now(), now(), now() FROM alerts WHERE id = $1",
                    made["alerts"]["oct"],
                )
            with pytest.raises(asyncpg.ForeignKeyViolationError):  # a code must name a real alert
                await conn.execute(
                    "INSERT INTO alert_codes (id, alert_id, alert_opened_at, code_hash, channel, created_at)"
                    " VALUES (gen_random_uuid(), $1, $2, 'h2', 'sms', now())",
                    made["alerts"]["oct"],
                    AUGUST,
                )
        finally:
            await conn.close()

    asyncio.run(after_upgrade())
    command.downgrade(cfg, "0015")

    async def after_downgrade() -> None:
        conn = await _connect(scratch_db)
        try:
            assert await relkind(conn, "alerts") == "r" and await relkind(conn, "incident_events") == "r"
            assert not await conn.fetchval("SELECT to_regclass('ix_incidents_open_created')::text")
            assert set(await where_rows_are(conn, "alerts")) == {str(v) for v in made["alerts"].values()}
            assert len(await where_rows_are(conn, "incident_events")) == 3
            assert await conn.fetchval("SELECT count(*) FROM alert_codes") == 1
            assert not await conn.fetchval(
                "SELECT count(*) FROM information_schema.columns WHERE column_name IN"
                " ('opened_at', 'alert_opened_at')"
            )
            with pytest.raises(asyncpg.UniqueViolationError):
                await conn.execute(
                    "INSERT INTO alerts SELECT gen_random_uuid(), incident_id, responder_id, role, aed_id,"
                    " eta_s, distance_m, status, batch, created_at, expires_at, updated_at"
                    " FROM alerts WHERE id = $1",
                    made["alerts"]["oct"],
                )
        finally:
            await conn.close()

    asyncio.run(after_downgrade())
    command.upgrade(cfg, "head")


def _months(first: datetime, last: datetime) -> list[datetime]:
    months, month = [], month_of(first)
    while month <= last:
        months.append(month)
        month = add_months(month, 1)
    return months


@pytest.fixture(scope="module")
def partitioned_db(store_env: dict[str, str]) -> Iterator[str]:
    """A migrated database of its own, with six old months made (empty, as an archive would be),
    so that a query reading one of them is seen."""
    with fresh_database(store_env["DATABASE_URL"], "partitions") as url:

        async def old_months() -> None:
            conn = await _connect(url)
            try:
                for month in PAST:
                    await conn.execute(create_month_sql(ALERTS, month))
                    await conn.execute(create_month_sql(EVENTS, month))
            finally:
                await conn.close()

        asyncio.run(old_months())
        yield url


@pytest_asyncio.fixture
async def db(partitioned_db: str) -> AsyncIterator[Database]:
    database = Database(partitioned_db, pool_size=2)
    yield database
    await database.dispose()


async def test_months_ahead_are_made_once_by_any_number_of_workers(db: Database) -> None:
    later = add_months(NOW, 7)  # as the daily step would, seven months on

    async def one_worker() -> list[str]:
        async with db.engine.begin() as connection:
            return await ensure_months(connection, later, MONTHS_AHEAD)

    made = await asyncio.gather(*(one_worker() for _ in range(4)))
    expected = {partition_name(t, m) for t in (ALERTS, EVENTS) for m in _months(later, add_months(later, 3))}
    assert sorted(n for names in made for n in names) == sorted(expected)  # each made once, by one
    async with db.engine.begin() as connection:
        assert await ensure_months(connection, later, MONTHS_AHEAD) == []  # idempotent
        existing = set((await connection.exec_driver_sql(
            "SELECT relname FROM pg_class WHERE relname LIKE 'alerts_2%' OR relname LIKE 'incident_events_2%'"
        )).scalars())  # fmt: skip
    assert expected <= existing


async def test_rows_land_in_their_month_and_a_far_future_one_in_default(
    db: Database, partitioned_db: str
) -> None:
    conn = await _connect(partitioned_db)
    try:
        responder = await add_responder(conn)
        placed = {}
        for month in (PAST[1], month_of(NOW), add_months(month_of(NOW), 2)):
            incident = await add_incident(conn, month + timedelta(days=3))
            alert = await add_alert(
                conn, incident, responder, month + timedelta(days=3), opened_at=month + timedelta(days=3)
            )
            placed[str(alert)] = partition_name(ALERTS, month)
            placed[str(await add_event(conn, incident, month + timedelta(days=3)))] = partition_name(
                EVENTS, month
            )
        far = datetime(2031, 5, 5, tzinfo=UTC)  # a clock gone wrong: no month made there, no error either
        stray = await add_incident(conn, far)
        placed[str(await add_alert(conn, stray, responder, far, opened_at=far))] = ALERTS.default
        placed[str(await add_event(conn, stray, far))] = EVENTS.default
        found = await where_rows_are(conn, "alerts") | await where_rows_are(conn, "incident_events")
        assert {k: found[k] for k in placed} == placed
    finally:
        await conn.close()
    # and the month of the stray rows is then left alone (PostgreSQL would refuse it), not an error
    async with db.engine.begin() as connection:
        made = await ensure_months(connection, datetime(2031, 4, 1, tzinfo=UTC), 2)
    assert partition_name(EVENTS, datetime(2031, 4, 1, tzinfo=UTC)) in made
    assert partition_name(EVENTS, datetime(2031, 5, 1, tzinfo=UTC)) not in made


class Statements:
    """Every statement the service sends through an engine, to EXPLAIN exactly that."""

    def __init__(self, db: Database) -> None:
        self.sent: list[tuple[str, Any]] = []
        event.listen(db.engine.sync_engine, "before_cursor_execute", self._record)

    def _record(self, _conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        self.sent.append((statement, parameters))

    async def plan(self, session: AsyncSession, analyze: bool = False) -> dict[str, Any]:
        statement, parameters = self.sent[-1]
        options = "ANALYZE, FORMAT JSON" if analyze else "FORMAT JSON"
        connection = await session.connection()
        raw = (await connection.exec_driver_sql(f"EXPLAIN ({options}) {statement}", parameters)).scalar_one()
        return (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]


def scanned(plan: dict[str, Any], executed_only: bool = False) -> set[str]:
    """The tables a plan reads (with ANALYZE and `executed_only`: those it really read)."""
    found = set()
    if "Relation Name" in plan and not (executed_only and plan.get("Actual Loops") == 0):
        found.add(plan["Relation Name"])
    for child in plan.get("Plans", ()):
        found |= scanned(child, executed_only)
    return found


def old_months(tables: set[str]) -> set[str]:
    return {t for t in tables if any(t == partition_name(x, m) for x in (ALERTS, EVENTS) for m in PAST)}


async def test_the_hot_queries_read_only_the_months_they_need(db: Database, partitioned_db: str) -> None:
    conn = await _connect(partitioned_db)
    try:
        responder = await add_responder(conn)
        opened = NOW - timedelta(minutes=3)
        incident_id = await add_incident(conn, opened)
        await conn.execute("UPDATE incidents SET status = 'closed' WHERE id <> $1", incident_id)
        await add_alert(conn, incident_id, responder, opened, opened_at=opened)
        await add_event(conn, incident_id, opened)
    finally:
        await conn.close()
    statements = Statements(db)
    async with db.sessions() as session:
        incident = await session.get(Incident, incident_id)
        assert incident is not None

        assert len(await alerts_of(session, incident)) == 1
        plan = scanned(await statements.plan(session))
        assert plan == {partition_name(ALERTS, month_of(opened))}, plan  # one month: the incident's

        assert len(await events.history(session, incident)) == 1
        plan = scanned(await statements.plan(session))
        assert partition_name(EVENTS, month_of(opened)) in plan and not old_months(plan), plan

        assert len(await events.since(session, 0, NOW, 100)) >= 1
        plan = scanned(await statements.plan(session))
        assert partition_name(EVENTS, month_of(opened)) in plan and not old_months(plan), plan

        # a responder's alerts of open incidents: bounded by the oldest open incident, known only
        # when the query runs, so the old months are skipped at run time (never executed)
        assert len(await alert_views(session, responder_id=responder)) == 1
        plan = await statements.plan(session, analyze=True)
        assert old_months(scanned(plan)), "the old months are in the plan ..."
        assert not old_months(scanned(plan, executed_only=True)), "... but never read"
