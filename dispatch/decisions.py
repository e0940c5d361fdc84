"""The dispatch policy's decisions applied to an incident's rows, on an answer or on the clock.

`dispatch.policy.circle` decides; this module writes what it decided, in the caller's transaction
(the incident's row is locked, so decisions about one incident are taken one after the other,
whichever worker takes them), and says what to publish once committed:

* **the acceptor's role** (`assign_role`): straight to the patient or via an AED, given who
  accepted before and who may still accept (`choose_role`), stored on the alert with the AED and the
  ETA that role takes; event `role_assigned`. Without the acceptor's live position (Redis down, or
  they left the reach) they go straight to the patient, and the event says why.
* **stand-down** (`stand_down_pending`): once enough accepted, every alert still pending is
  cancelled (`enough_responders`): the phones get a `cancel`, the ladder of channels stops (it steps
  only alerts still `sent`), one-time codes die with them, and the clock stops looking.
* **a move** (`after_move`): the emergency centre placed the patient elsewhere; pending alerts to
  people no longer in reach are cancelled (`moved_out_of_reach`) and `top_up` alerts who is now.
* **top-up** (`alert_people` for whom `top_up` picks): whom to alert now that the circle changed:
  at once after a decline, and when an alert goes unanswered past `answer_timeout_s` (the clock, at
  `incidents.next_topup_at`), so a replacement never waits for an escalation tick.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from dispatch import events
from dispatch.circle import Circle, read_circle, sent_of
from dispatch.context import DispatchContext
from dispatch.frames import cancel_frame, incident_frame
from dispatch.models import ENGAGED, PENDING, Alert, Incident, IncidentEvent
from dispatch.policy.circle import (
    STAND_DOWN_REASON,
    Person,
    RoleChoice,
    accepted,
    choose_role,
    enough,
    stand_down,
    taken_aeds,
    top_up,
    with_answer,
)
from dispatch.service import (
    LIVE,
    UNAVAILABLE,
    add_alerts,
    alert_event,
    alert_views,
    first_overdue,
    publish_alerts,
    replan_soon,
)


@dataclass
class Changes:
    """What one round of decisions wrote: published once the transaction commits."""

    alerted: list[Alert] = field(default_factory=list)
    stood_down: list[Alert] = field(default_factory=list)
    logged: list[IncidentEvent] = field(default_factory=list)
    new_place: list[Alert] = field(default_factory=list)  # on the way to where the patient no longer is

    def __iadd__(self, other: Changes) -> Changes:
        self.alerted += other.alerted
        self.stood_down += other.stood_down
        self.logged += other.logged
        self.new_place += other.new_place
        return self

    async def publish(self, session: AsyncSession, ctx: DispatchContext) -> None:
        """After the commit: a `cancel` to each phone stood down, the exact place again (`incident`)
        to each on the way when the patient moved, the new alerts, then the events."""
        for view in await alert_views(session, [a.id for a in self.new_place]):
            await ctx.fanout.to_responder(view.responder_id, incident_frame(view))
        for alert in self.stood_down:
            reason = alert.cancel_reason or STAND_DOWN_REASON
            frame = cancel_frame(str(alert.id), str(alert.incident_id), reason)
            await ctx.fanout.to_responder(str(alert.responder_id), frame)
        if self.alerted:
            await publish_alerts(session, ctx, self.alerted)
            ctx.wake_ladder.set()  # the new alerts' first rung (push without a socket) now
        await events.publish(ctx.fanout, self.logged)


def assign_role(
    session: AsyncSession, ctx: DispatchContext, circle: Circle, alert: Alert
) -> tuple[Circle, IncidentEvent]:
    """Decide the role of the responder who just accepted `alert` (already `accepted`, with its
    `answered_at`) and store it: the circle with the decision in it, and the `role_assigned` event."""
    rid = str(alert.responder_id)
    acceptor = circle.person(rid)
    fallback = None
    if acceptor is not None:
        choice = choose_role(acceptor, circle.sent, circle.people, circle.now_s, circle.rules)
    else:
        choice = RoleChoice("cpr", None, alert.eta_s)
        fallback = (
            "positions unavailable: straight to the patient"
            if circle.plan.positions == UNAVAILABLE
            else "not in reach now: straight to the patient"
        )
    alert.role, alert.eta_s = choice.role, round(choice.eta_s, 1)
    alert.aed_id = uuid.UUID(choice.aed_id) if choice.aed_id else None
    logged = events.record(
        session,
        alert.incident_id,
        "role_assigned",
        alert_id=str(alert.id),
        responder_id=rid,
        role=choice.role,
        aed_id=choice.aed_id,
        eta_s=alert.eta_s,
        fallback=fallback,
    )
    sent = with_answer(circle.sent, rid, role=choice.role, aed_id=choice.aed_id, eta_s=alert.eta_s)
    return circle.with_sent(sent), logged


def stand_down_pending(session: AsyncSession, ctx: DispatchContext, circle: Circle) -> Changes | None:
    """Once enough accepted: cancel every alert still pending (`enough_responders`) and stop the
    clock for the incident. None while the targets are not met."""
    if not enough(circle.sent, circle.people, circle.rules):
        return None
    incident = circle.incident
    incident.next_topup_at = incident.next_escalation_at = None
    ids = set(stand_down(circle.sent, circle.people, circle.rules))
    changes = Changes()
    for alert in circle.alerts:
        if str(alert.responder_id) in ids and alert.status in PENDING:
            alert.status, alert.cancel_reason = "cancelled", STAND_DOWN_REASON
            alert.updated_at, alert.ladder_due_at = circle.now, None
            changes.stood_down.append(alert)
            changes.logged.append(alert_event(session, alert, "stood_down"))
    changes.logged.append(
        events.record(
            session,
            incident.id,
            "escalation_stopped",
            accepted=len(accepted(circle.sent)),
            target=circle.rules.target_total,
            stood_down=len(changes.stood_down),
        )
    )
    return changes


def alert_people(
    session: AsyncSession, ctx: DispatchContext, circle: Circle, people: Sequence[Person]
) -> tuple[list[Alert], list[IncidentEvent]]:
    """Alert rows for the people the policy picked, in a batch of their own, and their events."""
    if not people:
        return [], []
    batch = max((a.batch for a in circle.alerts), default=-1) + 1
    rows = add_alerts(session, ctx, circle.incident, people, batch, taken_aeds=taken_aeds(circle.sent))
    return rows, [alert_event(session, row, "alert_sent") for row in rows]


def schedule_topup(ctx: DispatchContext, circle: Circle, new: Sequence[Alert]) -> None:
    """When the clock next looks because a pending alert goes unanswered past the answer timeout."""
    incident = circle.incident
    incident.next_topup_at = first_overdue([*circle.alerts, *new], circle.now, circle.rules.answer_timeout_s)


def note_positions(session: AsyncSession, ctx: DispatchContext, circle: Circle) -> list[IncidentEvent]:
    """When a plan saw no live positions (Redis down or warming up) while the incident's last one
    did: say so, and have the clock re-plan within seconds at the same reach (`replan_s`)."""
    incident, positions = circle.incident, circle.plan.positions
    if positions == LIVE or replan_soon(incident.coverage.get("positions", LIVE)):
        return []
    incident.coverage = {**incident.coverage, "positions": positions}
    incident.next_escalation_at = circle.now + timedelta(seconds=ctx.settings.replan_s)
    return [events.record(session, incident.id, f"positions_{positions}", reach_s=incident.reach_s)]


async def after_answer(
    session: AsyncSession, ctx: DispatchContext, incident: Incident, alert: Alert
) -> Changes:
    """Everything an answer decides, in its transaction (the incident's row locked by the caller):
    an acceptor's role and the stand-down it may bring; otherwise the replacements the policy
    wants now (after a decline, or an accept that left the AED short), at once."""
    circle = await read_circle(session, ctx, incident)
    changes = Changes(logged=note_positions(session, ctx, circle))
    if alert.status == "accepted":
        circle, decided = assign_role(session, ctx, circle, alert)
        changes.logged.append(decided)
        stood = stand_down_pending(session, ctx, circle)
        if stood is not None:
            changes += stood
            return changes
    chosen = top_up(circle.sent, circle.people, circle.now_s, circle.rules)
    new, logged = alert_people(session, ctx, circle, chosen)
    if new:
        changes.logged += [topped_up(session, circle, new, reason=alert.status), *logged]
        changes.alerted += new
    schedule_topup(ctx, circle, new)
    return changes


def topped_up(session: AsyncSession, circle: Circle, new: Sequence[Alert], reason: str) -> IncidentEvent:
    """The event for replacements sent at the incident's current reach, and why."""
    return events.record(
        session,
        circle.incident.id,
        "topped_up",
        reason=reason,
        reach_s=circle.incident.reach_s,
        at_s=round(circle.now_s, 1),
        alerted=[str(a.responder_id) for a in new],
    )


MOVED_REASON = "moved_out_of_reach"  # a `cancel` because the patient is elsewhere than first said


async def after_move(session: AsyncSession, ctx: DispatchContext, incident: Incident) -> Changes:
    """The incident's place changed (already written on the row, locked by the caller): the
    circle is read again around the new place; alerts still pending to people no longer in reach
    are cancelled, and the policy tops the circle up from who is in reach now. Responders who
    accepted are not stood down (they are on their way and still the nearest help there is): they
    are sent the new place."""
    circle = await read_circle(session, ctx, incident)
    incident.coverage = circle.plan.coverage()
    changes = Changes(logged=note_positions(session, ctx, circle))
    in_reach = {p.responder_id for p in circle.people}
    for alert in circle.alerts:
        if alert.status in PENDING and str(alert.responder_id) not in in_reach:
            alert.status, alert.cancel_reason = "cancelled", MOVED_REASON
            alert.updated_at, alert.ladder_due_at = circle.now, None
            changes.stood_down.append(alert)
            changes.logged.append(alert_event(session, alert, "moved_out_of_reach"))
    changes.new_place = [a for a in circle.alerts if a.status in ENGAGED]
    chance = {s.responder_id: s.p_accept for s in circle.sent}
    circle = circle.with_sent([sent_of(incident, a, chance[str(a.responder_id)]) for a in circle.alerts])
    chosen = top_up(circle.sent, circle.people, circle.now_s, circle.rules)
    new, logged = alert_people(session, ctx, circle, chosen)
    if new:
        changes.logged += [topped_up(session, circle, new, reason="moved"), *logged]
        changes.alerted += new
    schedule_topup(ctx, circle, new)
    return changes
