"""One incident's circle as the dispatch policy sees it, read from the record and the live store.

The policy (`dispatch.policy.circle`) decides on plain data: the people in reach now (`Person`,
built by `dispatch.service.plan_alerts`) and the alerts out (`Sent`), with every time in seconds
since the incident opened. This module turns the incident's alert rows into that data; it decides
nothing, so the simulator, which builds the same data from its own replay, meets the very same
decisions.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.context import DispatchContext
from dispatch.models import UNDECIDED, Alert, Incident
from dispatch.policy.circle import CircleRules, Person, Sent, Status
from dispatch.service import Plan, acceptance_chances, alerts_of, plan_alerts

STATUS: dict[str, Status] = {
    "sent": "pending",
    "delivered": "pending",
    "accepted": "accepted",
    "en_route": "accepted",
    "on_scene": "accepted",
    "declined": "declined",
    "expired": "expired",
    "cancelled": "cancelled",
}
"""An alert row's status as the policy counts it: a receipt changes nothing; on the way is accepted."""


def rules_for(ctx: DispatchContext, incident: Incident) -> CircleRules:
    """The policy's rules for one incident: the service's, with the answer timeout the incident was
    opened with (a worker started with another one follows it, as it follows its escalation
    interval). Incidents from before it was kept follow the worker's settings."""
    if incident.answer_timeout_s is None:
        return ctx.policy
    return replace(ctx.policy, answer_timeout_s=incident.answer_timeout_s)


def seconds_since(incident: Incident, when: datetime) -> float:
    """The policy's clock: seconds since the incident opened."""
    return (when - incident.created_at).total_seconds()


def sent_of(incident: Incident, alert: Alert, p_accept: float) -> Sent:
    """One alert row as the policy's `Sent`. An accepted responder's role, AED and ETA count only
    once decided (an acceptor being decided right now is accepted without a role yet)."""
    status = STATUS[alert.status]
    decided = status == "accepted" and alert.role != UNDECIDED
    answered = alert.answered_at or (alert.updated_at if status == "accepted" else None)
    return Sent(
        responder_id=str(alert.responder_id),
        sent_at_s=seconds_since(incident, alert.created_at),
        status=status,
        p_accept=p_accept,
        role=alert.role if decided else None,  # type: ignore[arg-type]
        aed_id=str(alert.aed_id) if decided and alert.aed_id else None,
        eta_s=alert.eta_s if decided else math.inf,
        answered_at_s=seconds_since(incident, answered) if answered is not None else None,
    )


@dataclass(frozen=True)
class Circle:
    """An incident, its alert rows, who is in reach now, the alerts as the policy's `Sent`, and the
    rules the policy decides by for this incident."""

    incident: Incident
    alerts: list[Alert]
    plan: Plan
    sent: list[Sent]
    now: datetime
    rules: CircleRules

    @property
    def people(self) -> list[Person]:
        return self.plan.people

    @property
    def now_s(self) -> float:
        return seconds_since(self.incident, self.now)

    def person(self, responder_id: str) -> Person | None:
        return next((p for p in self.people if p.responder_id == responder_id), None)

    def with_sent(self, sent: list[Sent]) -> Circle:
        return replace(self, sent=sent)


async def read_circle(
    session: AsyncSession,
    ctx: DispatchContext,
    incident: Incident,
    *,
    reach_s: float | None = None,
    now: datetime | None = None,
) -> Circle:
    """The incident's circle now, at its reach (or `reach_s`): the live positions and open AEDs
    (`plan_alerts`, concurrent searches) and every alert of the incident, the pending ones with
    their responder's chance of accepting."""
    now = datetime.now(UTC) if now is None else now
    plan = await plan_alerts(session, ctx, incident, reach_s or incident.reach_s, at=now.timestamp())
    alerts = await alerts_of(session, incident)
    chance: Mapping[str, float] = {p.responder_id: p.p_accept for p in plan.people}
    out_of_reach = {str(a.responder_id) for a in alerts} - chance.keys()
    if out_of_reach:
        chance = {**chance, **await acceptance_chances(session, ctx, out_of_reach)}
    return Circle(incident, alerts, plan, _sent(incident, alerts, chance), now, rules_for(ctx, incident))


def _sent(incident: Incident, alerts: Iterable[Alert], chance: Mapping[str, float]) -> list[Sent]:
    return [sent_of(incident, a, chance[str(a.responder_id)]) for a in alerts]
