"""The transactional outbox: feedback for a centre is written in the transaction of the change.

Hooks on the session (`install`) note the incident events each flush writes and, just before the
commit, for an incident that came from a centre with subscriptions, fold the transaction's events
into feedback (`cad.feedback`) and add one outbox row per subscription and feedback event, which
the commit writes with them. So a centre hears of every change that committed and never of one that
rolled back, without any writer in `dispatch` knowing about centres. Folding per transaction, not
per flush: a writer's queries autoflush, so an answer's `accepted` may be flushed before the
`role_assigned` that completes it. Why not tail `incident_events` by id: ids are taken at insert,
not at commit, so a tail can pass an id whose transaction commits later and never see it.

`seq` comes from the stream row (subscription, incident), locked until the writer commits: the next
writer of the same incident waits, so `seq` follows commit order.

Incidents opened here (no agency) cost nothing: their row is already in the session (the writers
lock and load it), so its empty `agency` is read from memory, not from PostgreSQL.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any

from sqlalchemy import event, inspect, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, UOWTransaction

from aed_registry.models import Aed
from cad.feedback import Happened, Person, aeds_named, people_named, translate
from cad.outbox_models import CadOutbox, CadStream, CadSubscription
from dispatch.models import Incident, IncidentEvent
from responders.models import Responder

LOGGED = "cad_incident_events"
"""`session.info` key: the incident events this transaction has flushed so far, in order."""


def install() -> None:
    """Write feedback with every commit of incident events (idempotent: called by the app factory)."""
    for name, hook in (
        ("before_flush", _note_events),
        ("before_commit", _write_feedback),
        ("after_commit", _forget),
        ("after_soft_rollback", _forget_rolled_back),
    ):
        if not event.contains(Session, name, hook):
            event.listen(Session, name, hook)


def _note_events(session: Session, _context: UOWTransaction, _instances: Any) -> None:
    """Keep the transaction's events as they are flushed, in order."""
    new = sorted((o for o in session.new if isinstance(o, IncidentEvent)), key=_order)
    if new:
        session.info.setdefault(LOGGED, []).extend(new)


def _forget(session: Session) -> None:
    session.info.pop(LOGGED, None)


def _forget_rolled_back(session: Session, _previous: Any) -> None:
    session.info.pop(LOGGED, None)


def _write_feedback(session: Session) -> None:
    """Just before the commit: fold the transaction's events into each subscribed stream."""
    if any(isinstance(o, IncidentEvent) for o in session.new):
        session.flush()  # the last events join the list (the commit flushes what this adds)
    logged_in_order: list[IncidentEvent] = session.info.pop(LOGGED, [])
    if not logged_in_order:
        return
    logged: dict[uuid.UUID, list[IncidentEvent]] = defaultdict(list)
    for e in logged_in_order:
        logged[e.incident_id].append(e)
    _write(session, logged)


Origin = tuple[str | None, str | None]
"""An incident's (agency, tracking id); (None, None) for one opened here."""


def _in_memory(session: Session, incident_id: uuid.UUID) -> Origin | None:
    """The incident's origin when the session holds its row (the writers lock and load it, and
    an opening adds it), without a query; None when it must be read. SQLAlchemy leaves a column
    it inserted as NULL unloaded: a row this session inserted without an agency was opened here."""
    known = session.identity_map.get(session.identity_key(Incident, incident_id))
    if known is None:
        known = next((o for o in session.new if isinstance(o, Incident) and o.id == incident_id), None)
    if known is None:
        return None
    if "agency" in known.__dict__:
        return known.agency, known.__dict__.get("tracking_id")
    return (None, None) if inspect(known).insert_order is not None else None


def _origins(session: Session, incident_ids: list[uuid.UUID]) -> dict[uuid.UUID, Origin]:
    """Where each incident came from: from memory where possible, else one query for the rest."""
    origins: dict[uuid.UUID, Origin] = {}
    unknown = []
    for incident_id in incident_ids:
        origin = _in_memory(session, incident_id)
        if origin is None:
            unknown.append(incident_id)
        else:
            origins[incident_id] = origin
    if unknown:
        query = select(Incident.id, Incident.agency, Incident.tracking_id).where(Incident.id.in_(unknown))
        origins.update({i: (agency, tracking) for i, agency, tracking in session.execute(query)})
    return origins


def _write(session: Session, logged: dict[uuid.UUID, list[IncidentEvent]]) -> None:
    origins = {i: o for i, o in _origins(session, list(logged)).items() if o[0] is not None}
    if not origins:
        return
    agencies = {agency for agency, _ in origins.values()}
    query = (
        select(CadSubscription.id, CadSubscription.agency)
        .where(CadSubscription.agency.in_(agencies))
        .order_by(CadSubscription.id)  # streams locked in one order by every writer: no deadlock
    )
    subscribed = session.execute(query).all()
    if not subscribed:
        return
    happened = {
        incident_id: [Happened(e.kind, e.ts, e.data) for e in logged[incident_id]] for incident_id in origins
    }
    people, aeds = _names(session, [h for hs in happened.values() for h in hs])
    for subscription_id, agency in subscribed:
        for incident_id, (incident_agency, tracking_id) in sorted(origins.items()):
            if incident_agency == agency:
                _write_stream(
                    session, subscription_id, incident_id, tracking_id, happened[incident_id], people, aeds
                )


def _order(e: IncidentEvent) -> int:
    """Events of one flush in the order they were added to the session (`session.new` is a set)."""
    return int(inspect(e).insert_order or 0)


def _names(session: Session, happened: list[Happened]) -> tuple[dict[str, Person], dict[str, str]]:
    """Names (and phones) of the responders, and names of the AEDs, the feedback mentions."""
    rids = [uuid.UUID(r) for r in people_named(happened)]
    aed_ids = [uuid.UUID(a) for a in aeds_named(happened)]
    people = (
        {
            str(rid): Person(name, phone)
            for rid, name, phone in session.execute(
                select(Responder.id, Responder.name, Responder.phone).where(Responder.id.in_(rids))
            )
        }
        if rids
        else {}
    )
    aeds = (
        {str(a): n for a, n in session.execute(select(Aed.id, Aed.name).where(Aed.id.in_(aed_ids)))}
        if aed_ids
        else {}
    )
    return people, aeds


def _write_stream(
    session: Session,
    subscription_id: uuid.UUID,
    incident_id: uuid.UUID,
    tracking_id: str | None,
    happened: list[Happened],
    people: dict[str, Person],
    aeds: dict[str, str],
) -> None:
    """Lock the stream row (made on first use), fold, and add the numbered outbox rows."""
    session.execute(
        insert(CadStream)
        .values(subscription_id=subscription_id, incident_id=incident_id, last_seq=0, tally={})
        .on_conflict_do_nothing()
    )
    stream = session.execute(
        select(CadStream)
        .where(CadStream.subscription_id == subscription_id, CadStream.incident_id == incident_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one()
    feedback, tally = translate(happened, stream.tally, people, aeds)
    if not feedback:
        return
    seq = stream.last_seq
    for fb in feedback:
        seq += 1
        body = {
            "event": fb.event,
            "incident_id": str(incident_id),
            "tracking_id": tracking_id,
            "seq": seq,
            "at": fb.at.isoformat(),
            **fb.fields,
        }
        session.add(
            CadOutbox(
                subscription_id=subscription_id, incident_id=incident_id, seq=seq, event=fb.event, body=body
            )
        )
    stream.last_seq, stream.tally = seq, tally
