"""Outcomes: record (upsert) and read an incident's outcome, and gather the Utstein report's facts.

An outcome is recorded only after the incident is closed: until then the facts are still being
made, and a record entered mid-rescue would be taken for the final one. Every edit is an incident
event `outcome_recorded` naming who changed which fields, in the same transaction, so the log is
the history of the record (the row itself keeps only the latest values).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.auth import Principal, Role
from dispatch import events
from dispatch.arrival_times import first_arrivals
from dispatch.fanout import Fanout
from dispatch.models import Incident
from dispatch.service import load_incident
from outcomes import rules
from outcomes.models import IncidentOutcome
from outcomes.schemas import FACTS, OutcomeIn, OutcomeOut
from outcomes.utstein import IncidentFacts


class OutcomeError(ValueError):
    """A request refused: `status` is the HTTP code, the problems name each field and rule."""

    def __init__(self, status: int, found: list[rules.Problem]) -> None:
        super().__init__("; ".join(f"{p.field}: {p.rule}" for p in found))
        self.status, self.problems = status, found


def _refuse(status: int, field: str, rule: str) -> OutcomeError:
    return OutcomeError(status, [rules.Problem(field, rule)])


def _now() -> datetime:
    return datetime.now(UTC)


def _may_report(principal: Principal, incident: Incident) -> None:
    """An emergency centre (`cad`) reports only on incidents it sent: its EMS crew was there."""
    if principal.role is Role.cad and incident.agency != principal.agency:
        raise _refuse(403, "incident_id", "an emergency centre may record outcomes only of its own incidents")


def _facts(outcome: IncidentOutcome | None) -> dict[str, Any]:
    return {name: getattr(outcome, name) if outcome else None for name in FACTS}


def outcome_out(outcome: IncidentOutcome) -> OutcomeOut:
    return OutcomeOut(
        incident_id=outcome.incident_id,
        **_facts(outcome),
        recorded_by=outcome.recorded_by,
        recorded_at=outcome.recorded_at,
        updated_at=outcome.updated_at,
    )


async def record_outcome(
    session: AsyncSession, fanout: Fanout, incident_id: uuid.UUID, body: OutcomeIn, principal: Principal
) -> tuple[OutcomeOut, bool]:
    """Upsert the outcome (fields sent replace, fields left out stay); returns it and whether it
    was created. The incident's row is locked first, so two edits at once apply one after the
    other, each checked against the other's result."""
    try:
        incident = await load_incident(session, incident_id, lock=True)
    except ValueError:
        raise _refuse(404, "incident_id", f"no incident {incident_id}") from None
    _may_report(principal, incident)
    if incident.status != "closed":
        raise _refuse(409, "incident_id", "the incident is still open: record its outcome after closing it")
    stored = await session.get(IncidentOutcome, incident_id)
    before = _facts(stored)
    after = {**before, **body.model_dump(include=body.model_fields_set, mode="python")}
    after["witnessed"] = str(after["witnessed"]) if after["witnessed"] is not None else None
    now = _now()
    found = rules.problems(after, incident.created_at, now)
    if found:
        raise OutcomeError(422, found)
    who = f"{principal.role.value}:{principal.label}"
    created = stored is None
    if stored is None:
        stored = IncidentOutcome(incident_id=incident_id, recorded_by=who, recorded_at=now)
        session.add(stored)
    for name, value in after.items():
        setattr(stored, name, value)
    stored.updated_at = now
    changed = (
        rules.changed_fields(before, after) if not created else [k for k, v in after.items() if v is not None]
    )
    logged = events.record(session, incident_id, "outcome_recorded", by=who, changed=changed, created=created)
    await session.commit()
    await events.publish(fanout, [logged])
    return outcome_out(stored), created


async def read_outcome(session: AsyncSession, incident_id: uuid.UUID, principal: Principal) -> OutcomeOut:
    try:
        incident = await load_incident(session, incident_id)
    except ValueError:
        raise _refuse(404, "incident_id", f"no incident {incident_id}") from None
    _may_report(principal, incident)
    stored = await session.get(IncidentOutcome, incident_id)
    if stored is None:
        raise _refuse(404, "incident_id", "no outcome recorded yet for this incident")
    return outcome_out(stored)


@dataclass(frozen=True, slots=True)
class Window:
    """Incidents opened in [start, end)."""

    start: datetime
    end: datetime


async def utstein_facts(session: AsyncSession, window: Window) -> tuple[list[IncidentFacts], int]:
    """The closed incidents opened in the window, oldest first, with their outcomes and arrival
    times; and how many incidents of the window were left out because they are still open (their
    record is not final: a report run again after they close will hold them)."""
    arrivals = first_arrivals(window.start, window.end).subquery()
    in_window = (Incident.created_at >= window.start, Incident.created_at < window.end)
    query = (
        select(Incident, IncidentOutcome, arrivals.c.responder_at, arrivals.c.aed_at)
        .outerjoin(IncidentOutcome, IncidentOutcome.incident_id == Incident.id)
        .outerjoin(arrivals, arrivals.c.incident_id == Incident.id)
        .where(*in_window, Incident.status == "closed")
        .order_by(Incident.created_at, Incident.id)
    )
    facts = [
        IncidentFacts(
            incident_id=incident.id,
            category=incident.category,
            place=incident.place,
            opened_at=incident.created_at,
            outcome_recorded=outcome is not None,
            **{k: v for k, v in _facts(outcome).items() if k != "note"},
            responder_at=responder_at,
            aed_at=aed_at,
        )
        for incident, outcome, responder_at, aed_at in (await session.execute(query)).all()
    ]
    still_open = await session.scalar(
        select(func.count()).select_from(Incident).where(*in_window, Incident.status == "open")
    )
    return facts, int(still_open or 0)
