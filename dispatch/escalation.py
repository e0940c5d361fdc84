"""The dispatch clock every API worker runs: alert expiry, top-ups for unanswered alerts, and
the escalation that widens the reach when the pool runs dry.

Each incident is looked at once however many workers there are: each worker claims the incidents
that are due with `SELECT … FOR UPDATE SKIP LOCKED` and moves their times forward in the same
transaction, so a second worker either skips the locked row or finds it no longer due. Answers
lock the same row (`dispatch.alerts.respond`), so the clock and an answer never decide at once.

An incident is due when a pending alert went unanswered past `answer_timeout_s`
(`next_topup_at`): the policy's `top_up` then alerts replacements at the current reach, an overdue
alert counting for little. It is also due every escalation interval (`next_escalation_at`, the
interval the incident was opened with): when `top_up` at the current reach finds nobody and the
targets are not met, the pool ran dry and the reach widens one step (`escalated`), up to the
largest reach (`escalation_exhausted`). Once enough accepted nothing is due any more.

An incident whose last plan saw no live positions (Redis down, or its data lost and phones still
sending positions again) is re-planned instead: at the same reach, since widening would skip the
people nearby whose positions are not back yet, and every `replan_s`, not once per escalation
interval, so each person is alerted within seconds of their position coming back (up to the
alert cap). Its coverage says what the positions were worth; once live, escalation resumes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.outage import log_failed_round
from dispatch import events
from dispatch.alerts import expire_due
from dispatch.channels.service import Ladder
from dispatch.circle import Circle, read_circle
from dispatch.context import DispatchContext
from dispatch.decisions import (
    Changes,
    alert_people,
    note_positions,
    schedule_topup,
    stand_down_pending,
    topped_up,
)
from dispatch.models import Alert, Incident, IncidentEvent
from dispatch.policy.circle import Person, accepted, top_up
from dispatch.service import LIVE, replan_soon

log = logging.getLogger(__name__)
LADDER_TICK_S = 0.5  # rungs are due seconds apart: at most this late


async def escalate(session: AsyncSession, ctx: DispatchContext, incident: Incident) -> Changes:
    """One look at one due incident (row locked by the caller): stand down once enough accepted;
    else top up at the current reach, re-plan while positions are missing, or widen the reach
    when the pool ran dry."""
    now = datetime.now(UTC)
    escalation_due = incident.next_escalation_at is not None and incident.next_escalation_at <= now
    overdue = incident.next_topup_at is not None and incident.next_topup_at <= now
    positions_before = incident.coverage.get("positions", LIVE)
    replanning = replan_soon(positions_before)
    circle = await read_circle(session, ctx, incident, now=now)
    stood = stand_down_pending(session, ctx, circle)
    if stood is not None:
        return stood
    chosen = top_up(circle.sent, circle.people, circle.now_s, circle.rules)
    dry = escalation_due and not chosen and not replanning and circle.plan.positions == LIVE
    if dry:  # nobody the policy wants at this reach, and the targets are not met: look further
        circle, chosen = await _widened(session, ctx, circle)
    new, sent_events = alert_people(session, ctx, circle, chosen)
    changes = Changes(alerted=new)
    if dry or (replanning and (new or circle.plan.positions != positions_before)):
        incident.escalation_step += 1
        changes.logged.append(_step_event(session, circle, new, "escalated" if dry else "replanned"))
    elif new:
        # an alert went unanswered past the timeout; else the circle changed (someone came in reach)
        changes.logged.append(topped_up(session, circle, new, reason="no_answer" if overdue else "review"))
    changes.logged += sent_events
    if replanning or (circle.plan.people and not incident.coverage.get("covered")):
        incident.coverage = circle.plan.coverage()
    else:
        changes.logged += note_positions(session, ctx, circle)
    changes.logged += _next_escalation(session, ctx, circle, new, dry=dry, due=escalation_due)
    schedule_topup(ctx, circle, new)
    return changes


async def _widened(
    session: AsyncSession, ctx: DispatchContext, circle: Circle
) -> tuple[Circle, list[Person]]:
    """The circle one escalation step wider (up to the largest reach), and whom the policy picks there."""
    incident, settings = circle.incident, ctx.settings
    reach = min(incident.reach_s + settings.escalation_step_s, settings.reach_max_s)
    if reach > incident.reach_s:
        circle = await read_circle(session, ctx, incident, reach_s=reach, now=circle.now)
    incident.reach_s = reach
    return circle, top_up(circle.sent, circle.people, circle.now_s, circle.rules)


def _step_event(session: AsyncSession, circle: Circle, new: list[Alert], kind: str) -> IncidentEvent:
    incident = circle.incident
    return events.record(
        session,
        incident.id,
        kind,
        step=incident.escalation_step,
        reach_s=incident.reach_s,
        accepted=len(accepted(circle.sent)),
        target=circle.rules.target_total,
        alerted=[str(a.responder_id) for a in new],
        positions=circle.plan.positions,
    )


def _next_escalation(
    session: AsyncSession, ctx: DispatchContext, circle: Circle, new: list[Alert], *, dry: bool, due: bool
) -> list[IncidentEvent]:
    """When the clock looks again for a re-plan or an escalation: within seconds while positions
    are missing; never once the pool is dry at the largest reach (or the cap is reached); else
    an interval after this step."""
    incident, settings, now = circle.incident, ctx.settings, circle.now
    room = circle.rules.alert_cap - len(circle.sent) - len(new)
    if room > 0 and replan_soon(circle.plan.positions):
        incident.next_escalation_at = now + timedelta(seconds=settings.replan_s)
    elif dry and not new and (incident.reach_s >= settings.reach_max_s or room <= 0):
        incident.next_escalation_at = None
        alerts = len(circle.sent)
        return [
            events.record(
                session, incident.id, "escalation_exhausted", reach_s=incident.reach_s, alerts=alerts
            )
        ]
    elif due:
        interval = incident.escalation_interval_s or settings.escalation_interval_s  # None: before 0006
        incident.next_escalation_at = now + timedelta(seconds=interval)
    return []


async def escalate_due(ctx: DispatchContext) -> int:
    """Look at every incident whose time has come and that no other worker holds."""
    now = func.now()
    async with ctx.db.sessions() as session:
        due = (
            (
                await session.execute(
                    select(Incident)
                    .where(
                        Incident.status == "open",
                        or_(Incident.next_escalation_at <= now, Incident.next_topup_at <= now),
                    )
                    .order_by(func.least(Incident.next_escalation_at, Incident.next_topup_at))
                    .limit(20)
                    .with_for_update(skip_locked=True, key_share=True)  # FOR NO KEY UPDATE: see alerts
                )
            )
            .scalars()
            .all()
        )
        if not due:
            await session.rollback()
            return 0
        changes = Changes()
        for incident in due:
            changes += await escalate(session, ctx, incident)
        await session.commit()
        await changes.publish(session, ctx)
        return len(due)


async def run_dispatch_clock(ctx: DispatchContext) -> None:
    """Expire and escalate until cancelled; a failed round is logged and retried. The ladder of
    channels (`dispatch.channels.service`) steps beside it, on a tick of its own."""
    tick = min(1.0, max(0.1, ctx.settings.escalation_interval_s / 4))
    ladder = (
        asyncio.create_task(Ladder(ctx).run(min(tick, LADDER_TICK_S)))
        if ctx.settings.ladder_enabled
        else None
    )
    try:
        await _expire_and_escalate(ctx, tick)
    finally:
        if ladder is not None:
            ladder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ladder


async def _expire_and_escalate(ctx: DispatchContext, tick: float) -> None:
    while True:
        try:
            async with ctx.db.sessions() as session:
                await expire_due(session, ctx)
            await escalate_due(ctx)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log_failed_round(log, "the dispatch clock", exc)
        await asyncio.sleep(tick)
