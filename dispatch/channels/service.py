"""The ladder's stepper: takes each due rung of each unconfirmed alert, once, on whichever worker.

Every worker's dispatch clock runs it. A round claims due alerts with `SELECT … FOR UPDATE SKIP
LOCKED` and, in the same short transaction, moves each alert's `ladder_next` past the rungs it
takes and sets `ladder_due_at` to the next one's time: a second worker skips the locked rows or
finds them no longer due, so no rung is sent twice. The sends happen after the commit, outside
the transaction (a provider may take seconds; a receipt or an answer must not wait for it behind
the row lock), each in a task of its own, and each outcome is logged as an `attempt` event. A
worker that dies between the claim and the send loses that one attempt (the next rung still
comes): at most once, never twice.

SMS and voice attempts carry a link with a fresh one-time code (`codes.issue`), written in the
claim's transaction, so a code exists before any message can show it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable
from urllib.parse import urlencode

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.outage import log_failed_round
from dispatch import events
from dispatch.alerts import attempt_event
from dispatch.channels import codes
from dispatch.channels.base import Attempt, AttemptResult, Channel, Outcome
from dispatch.channels.ladder import NEEDS_PHONE, AlertState, LadderConfig, next_step
from dispatch.channels.metrics import ATTEMPTS
from dispatch.context import DispatchContext
from dispatch.models import Alert, Incident, IncidentEvent
from dispatch.service import alert_views
from responders.models import Responder

log = logging.getLogger(__name__)
BATCH = 100  # alerts claimed per round (a round repeats at once while it finds a full batch)


@runtime_checkable
class KnowsSubscribers(Protocol):
    """A channel that can say which responders it can reach at all (Web Push: who subscribed),
    so the ladder logs a skip instead of an attempt bound to fail. Channels without it are tried."""

    async def subscribed(self, responder_ids: Collection[str]) -> set[str]: ...


@dataclass(frozen=True, slots=True)
class Claimed:
    """A rung taken for an alert: to be sent after the claim's commit."""

    alert_id: uuid.UUID
    channel: str
    step: int
    phone: str | None
    link: str | None


def alert_link(base_url: str, alert_id: uuid.UUID, code: str) -> str:
    """The link an SMS carries: opens this one alert in the responder app with its code."""
    return f"{base_url.rstrip('/')}/responder?{urlencode({'alert': str(alert_id), 'code': code})}"


class Ladder:
    """One worker's stepper (run by the dispatch clock); `channels` are the ways past the socket."""

    def __init__(self, ctx: DispatchContext) -> None:
        self.ctx = ctx
        self.sending: set[asyncio.Task[None]] = set()

    async def run(self, tick_s: float) -> None:
        """Step until cancelled: at every tick, and at once when alerts were just published."""
        try:
            while True:
                try:
                    while await self.step_due() >= BATCH:
                        pass
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log_failed_round(log, "the ladder", exc)
                wake = self.ctx.wake_ladder
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), timeout=tick_s)
                wake.clear()
        finally:
            for task in list(self.sending):
                task.cancel()

    async def drain(self) -> None:
        """Wait for the sends started so far (and their events) to finish."""
        while self.sending:
            await asyncio.gather(*list(self.sending), return_exceptions=True)

    async def step_due(self) -> int:
        """One round: claim the due rungs, commit, start their sends; the number of alerts seen."""
        async with self.ctx.db.sessions() as session:
            rows = (
                await session.execute(
                    select(Alert, Incident.status, Responder.category, Responder.phone)
                    .join(Incident, Incident.id == Alert.incident_id)
                    .join(Responder, Responder.id == Alert.responder_id)
                    .where(Alert.status == "sent", Alert.ladder_due_at <= datetime.now(UTC))
                    .order_by(Alert.ladder_due_at)
                    .limit(BATCH)
                    .with_for_update(of=Alert, skip_locked=True)
                )
            ).all()
            if not rows:
                await session.rollback()
                return 0
            claimed, logged = await self._claim(session, rows)
            await session.commit()
            views = {v.alert_id: v for v in await alert_views(session, [c.alert_id for c in claimed])}
        await events.publish(self.ctx.fanout, logged)
        for c in claimed:
            attempt = Attempt(alert=views[str(c.alert_id)], phone=c.phone, link=c.link, step=c.step)
            task = asyncio.create_task(self._send(c.channel, self.ctx.channels[c.channel], attempt))
            self.sending.add(task)
            task.add_done_callback(self.sending.discard)
        return len(rows)

    async def _claim(
        self, session: AsyncSession, rows: list[tuple[Alert, str, str, str | None]]
    ) -> tuple[list[Claimed], list[IncidentEvent]]:
        """Climb each alert's ladder up to now (skips logged), leaving it due at its next rung."""
        ctx, now = self.ctx, datetime.now(UTC)
        responders = {str(alert.responder_id) for alert, *_ in rows}
        attached = await ctx.presence.attached(responders) if ctx.presence is not None else set()
        push = ctx.channels.get("push")
        subscribed = await push.subscribed(responders) if isinstance(push, KnowsSubscribers) else responders
        claimed: list[Claimed] = []
        logged: list[IncidentEvent] = []
        for alert, incident_status, category, phone in rows:
            config = LadderConfig.for_category(ctx.settings, category)
            rid = str(alert.responder_id)
            while True:
                state = AlertState(
                    status=alert.status,
                    ended=incident_status != "open" or alert.expires_at <= now,
                    socket_attached=alert.socket_at is not None or rid in attached,
                    push_subscribed=rid in subscribed,
                    has_phone=bool(phone),
                    configured=ctx.channels.keys(),
                    next_rung=alert.ladder_next,
                )
                step = next_step(state, config)
                if step is None:
                    alert.ladder_due_at = None
                    break
                due_at = alert.created_at + timedelta(seconds=step.due_s)
                if due_at > now:
                    alert.ladder_due_at = due_at
                    break
                alert.ladder_next = step.rung + 1
                number = step.rung + 1  # step 0 is the socket
                if step.skip is not None:
                    ATTEMPTS.labels(step.channel, "skipped").inc()
                    logged.append(
                        attempt_event(
                            session, alert, step.channel, number, "skipped", step.skip, kind="attempt_skipped"
                        )
                    )
                    continue
                link = None
                if step.channel in NEEDS_PHONE:
                    code = codes.issue(session, alert, step.channel)
                    link = alert_link(ctx.settings.public_base_url, alert.id, code)
                claimed.append(Claimed(alert.id, step.channel, number, phone, link))
        return claimed, logged

    async def _send(self, name: str, channel: Channel, attempt: Attempt) -> None:
        """Send one attempt and log what the provider made of it; a channel that raises is a
        provider error (logged with the reason), never a lost event."""
        try:
            result = await channel.send(attempt)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("%s attempt for alert %s failed", name, attempt.alert.alert_id, exc_info=True)
            result = AttemptResult(Outcome.provider_error, f"{type(exc).__name__}: {exc}"[:300])
        ATTEMPTS.labels(name, result.outcome.value).inc()
        try:
            async with self.ctx.db.sessions() as session:
                alert = await session.get(Alert, uuid.UUID(attempt.alert.alert_id))
                if alert is None:
                    return
                logged = [
                    attempt_event(
                        session,
                        alert,
                        name,
                        attempt.step,
                        result.outcome.value,
                        result.detail,
                        result.provider_id,
                    )
                ]
                await session.commit()
            await events.publish(self.ctx.fanout, logged)
        except Exception:
            log.exception("the outcome of a %s attempt was not recorded: %s", name, result)
