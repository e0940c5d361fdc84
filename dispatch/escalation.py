"""Escalation and alert expiry: the dispatch clock every API worker runs.

Escalation runs once per incident however many workers there are: each worker claims due incidents
with `SELECT … FOR UPDATE SKIP LOCKED` and moves `next_escalation_at` forward in the same
transaction, so a second worker either skips the locked row or finds it no longer due. The next step
is due after the interval the incident was opened with, whichever worker takes it.

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

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.outage import log_failed_round
from dispatch import events
from dispatch.alerts import expire_due
from dispatch.channels.service import Ladder
from dispatch.context import DispatchContext
from dispatch.models import ENGAGED, PENDING, Alert, Incident, IncidentEvent
from dispatch.service import LIVE, add_alerts, alert_event, plan_alerts, publish_alerts, replan_soon

log = logging.getLogger(__name__)
LADDER_TICK_S = 0.5  # rungs are due seconds apart: at most this late


async def escalate(
    session: AsyncSession, ctx: DispatchContext, incident: Incident
) -> tuple[list[Alert], list[IncidentEvent]]:
    """One step for one due incident (row locked by the caller): the new alerts and the events."""
    settings, policy = ctx.settings, ctx.policy
    now = datetime.now(UTC)
    alerts = list((await session.execute(select(Alert).where(Alert.incident_id == incident.id))).scalars())
    engaged = sum(a.status in ENGAGED for a in alerts)
    target = policy.target_cpr + policy.target_aed
    if engaged >= target:
        incident.next_escalation_at = None
        return [], [
            events.record(session, incident.id, "escalation_stopped", accepted=engaged, target=target)
        ]
    positions_before = incident.coverage.get("positions", LIVE)
    replan = replan_soon(positions_before)
    widened = min(incident.reach_s + settings.escalation_step_s, settings.reach_max_s)
    reach = incident.reach_s if replan else widened
    busy_aeds = {str(a.aed_id) for a in alerts if a.aed_id and (a.status in ENGAGED or a.status in PENDING)}
    plan = await plan_alerts(
        session, ctx, incident, reach, exclude={str(a.responder_id) for a in alerts}, exclude_aeds=busy_aeds
    )
    room = max(0, policy.alert_cap - len(alerts))
    plan.assignment.alerts[:] = plan.assignment.alerts[:room]
    if replan and not plan.assignment.alerts and plan.positions == positions_before:
        incident.next_escalation_at = now + timedelta(seconds=settings.replan_s)
        return [], []  # still waiting for positions: nothing new to log
    incident.escalation_step += 1
    incident.reach_s = reach
    new = add_alerts(session, ctx, incident, plan, batch=incident.escalation_step)
    if replan or (plan.assignment.coverage.covered and not incident.coverage.get("covered")):
        incident.coverage = plan.coverage()
    elif positions_before != plan.positions:
        incident.coverage = {**incident.coverage, "positions": plan.positions}
    logged = [
        events.record(
            session,
            incident.id,
            "replanned" if replan else "escalated",
            step=incident.escalation_step,
            reach_s=reach,
            accepted=engaged,
            target=target,
            alerted=[str(a.responder_id) for a in new],
            positions=plan.positions,
        )
    ]
    logged += [alert_event(session, a, "alert_sent") for a in new]
    if room and replan_soon(plan.positions):
        incident.next_escalation_at = now + timedelta(seconds=settings.replan_s)
    elif not new and (reach >= settings.reach_max_s or room == 0):
        incident.next_escalation_at = None
        logged.append(
            events.record(session, incident.id, "escalation_exhausted", reach_s=reach, alerts=len(alerts))
        )
    else:
        interval = incident.escalation_interval_s or settings.escalation_interval_s  # None: before 0006
        incident.next_escalation_at = now + timedelta(seconds=interval)
    return new, logged


async def escalate_due(ctx: DispatchContext) -> int:
    """Escalate every incident whose time has come and that no other worker holds."""
    async with ctx.db.sessions() as session:
        due = (
            (
                await session.execute(
                    select(Incident)
                    .where(Incident.status == "open", Incident.next_escalation_at <= func.now())
                    .order_by(Incident.next_escalation_at)
                    .limit(20)
                    .with_for_update(skip_locked=True)
                )
            )
            .scalars()
            .all()
        )
        if not due:
            await session.rollback()
            return 0
        new: list[Alert] = []
        logged: list[IncidentEvent] = []
        for incident in due:
            alerts, step_events = await escalate(session, ctx, incident)
            new += alerts
            logged += step_events
        await session.commit()
        await publish_alerts(session, ctx, new)
        ctx.wake_ladder.set()  # the new alerts' first rung (push for those without a socket) now
        await events.publish(ctx.fanout, logged)
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
