"""The outbox under the writers, on real PostgreSQL: an incident that comes from a centre with its
first events in one transaction (as the EIDO opening does) is reported from its first `alerted`;
a rolled-back transaction reports nothing; `seq` continues across transactions and follows commit
order when two writers meet; and an incident opened here costs the writer no query at all."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import delete, event, func, select, update

from cad import outbox
from cad.outbox_models import CadOutbox, CadStream, CadSubscription
from core.db import Database
from dispatch import events
from dispatch.models import Incident

pytestmark = pytest.mark.integration


AGENCY_PREFIX = "outbox-test-"
WRITER = "tests/integration/test_cad_outbox.py"  # its incidents are closed afterwards


@pytest_asyncio.fixture
async def db(store_env: dict[str, str]) -> AsyncIterator[Database]:
    """The shared database, with the outbox hooks; afterwards the test's subscriptions (and with
    them their rows, which the session's servers would keep trying to send) are dropped and its
    incidents closed."""
    outbox.install()
    database = Database(store_env["DATABASE_URL"], pool_size=2)
    yield database
    async with database.sessions() as session:
        await session.execute(delete(CadSubscription).where(CadSubscription.agency.startswith(AGENCY_PREFIX)))
        await session.execute(
            update(Incident)
            .where(Incident.created_by == WRITER)
            .values(status="closed", closed_at=func.now())
        )
        await session.commit()
    await database.dispose()


def incident(agency: str | None) -> Incident:
    tracking = f"urn:emergency:uid:incidentid:{uuid.uuid4().hex}" if agency else None
    return Incident(
        id=uuid.uuid4(),
        category="cardiac_arrest",
        status="open",
        location="SRID=4326;POINT(114.05 22.54)",
        lat=22.54,
        lng=114.05,
        reach_s=300.0,
        coverage={},
        escalation_step=0,
        created_by=WRITER,
        agency=agency,
        tracking_id=tracking,
    )


async def subscribed(db: Database) -> tuple[str, uuid.UUID]:
    agency = f"{AGENCY_PREFIX}{secrets.token_hex(4)}"
    async with db.sessions() as session:
        row = CadSubscription(agency=agency, url="http://127.0.0.1:9/x", secret="s" * 32)
        session.add(row)
        await session.commit()
        return agency, row.id


async def rows_of(db: Database, incident_id: uuid.UUID) -> list[CadOutbox]:
    async with db.sessions() as session:
        query = select(CadOutbox).where(CadOutbox.incident_id == incident_id).order_by(CadOutbox.seq)
        return list((await session.execute(query)).scalars())


async def test_an_opening_from_a_centre_is_reported_and_a_rollback_is_not(db: Database) -> None:
    agency, subscription_id = await subscribed(db)
    opened = incident(agency)
    async with db.sessions() as session:
        session.add(opened)  # not flushed: the incident and its first events go in one flush
        events.record(session, opened.id, "opened", category="cardiac_arrest")
        for _ in range(3):
            events.record(session, opened.id, "alert_sent", responder_id=str(uuid.uuid4()))
        await session.commit()
    (first,) = await rows_of(db, opened.id)
    assert (first.subscription_id, first.seq, first.event, first.status) == (
        subscription_id,
        1,
        "alerted",
        "pending",
    )
    assert first.body["alerted"] == 3 and first.body["tracking_id"] == opened.tracking_id

    async with db.sessions() as session:
        events.record(session, opened.id, "closed", reason="never happened")
        await session.flush()
        await session.rollback()
    assert len(await rows_of(db, opened.id)) == 1

    async with db.sessions() as session:
        events.record(session, opened.id, "alert_sent", responder_id=str(uuid.uuid4()))
        await session.flush()  # an autoflush mid-transaction: folded with the rest at the commit
        events.record(session, opened.id, "closed", reason="ems_on_scene")
        await session.commit()
    later = await rows_of(db, opened.id)
    assert [(r.seq, r.event) for r in later] == [(1, "alerted"), (2, "alerted"), (3, "closed")]
    assert later[1].body["alerted"] == 4 and later[2].body["reason"] == "ems_on_scene"


async def test_an_incident_opened_here_costs_the_writer_no_query(db: Database) -> None:
    await subscribed(db)  # a centre listens, but not to this incident
    statements: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", note)
    try:
        local = incident(None)
        async with db.sessions() as session:
            session.add(local)
            await session.flush()
            events.record(session, local.id, "opened", category="cardiac_arrest")
            events.record(session, local.id, "alert_sent", responder_id=str(uuid.uuid4()))
            await session.commit()
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", note)
    assert not [s for s in statements if "cad_" in s or s.lstrip().upper().startswith("SELECT")], statements
    assert await rows_of(db, local.id) == []


async def test_seq_follows_commit_order_when_two_writers_meet(db: Database) -> None:
    """Writer B holds the incident's stream (it is committing); writer A's commit waits for it and
    takes the next seq: a centre never sees seq n+1 commit before n."""
    agency, _ = await subscribed(db)
    opened = incident(agency)
    async with db.sessions() as session:
        session.add(opened)
        events.record(session, opened.id, "alert_sent", responder_id=str(uuid.uuid4()))
        await session.commit()
    async with db.sessions() as b, db.sessions() as a:
        await b.execute(
            select(CadStream).where(CadStream.incident_id == opened.id).with_for_update()
        )  # B is mid-commit, holding the stream
        events.record(a, opened.id, "en_route", responder_id=str(uuid.uuid4()))
        a_commits = asyncio.create_task(a.commit())
        await asyncio.sleep(0.3)
        assert not a_commits.done()  # A waits for B
        events.record(b, opened.id, "closed", reason="first to commit")
        await b.commit()
        await asyncio.wait_for(a_commits, 5)
    rows = await rows_of(db, opened.id)
    assert [(r.seq, r.event) for r in rows] == [(1, "alerted"), (2, "closed"), (3, "en_route")]
