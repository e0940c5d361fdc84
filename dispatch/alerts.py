"""A responder's side of an alert: attempts and receipts, accept/decline, en route/on scene, expiry.

Writing an alert into a socket is an attempt; only the phone's receipt (a `received` frame or
`POST /v1/alerts/{id}/received`) or its answer moves it to `delivered`, naming the channel.

Every transition is a conditional UPDATE (only from the states it may leave), so two sockets of
the same phone, or two workers expiring alerts at once, can never apply a change twice.

An answer is also a decision point of the dispatch policy (`dispatch.decisions`): an acceptor's
role is chosen then, enough acceptances stand the pending alerts down, and a decline is replaced
at once. Answers lock the incident's row first, so two acceptances arriving together are decided
one after the other, each seeing the other's role.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch import decisions, events
from dispatch.arrival_marks import mark_frame
from dispatch.channels.metrics import ATTEMPTS, RECEIPTS
from dispatch.context import DispatchContext
from dispatch.frames import AlertView, alert_frame, cancel_frame, incident_frame
from dispatch.geofence import Point
from dispatch.models import ENGAGED, PENDING, Alert, Incident
from dispatch.service import CLOSED_REASON, DispatchError, alert_views
from responders.acceptance import Outcome
from responders.acceptance_store import Answer

NEXT_STATUS = {
    "en_route": ("accepted",),
    "on_scene": ("accepted", "en_route"),
    "aed_picked_up": ENGAGED,  # a mark, not a status: the alert's status stays
}
MOVES_STATUS = ("en_route", "on_scene")
log = logging.getLogger(__name__)


def _now() -> datetime:
    return datetime.now(UTC)


async def pending_frames(session: AsyncSession, responder_id: uuid.UUID) -> list[dict[str, Any]]:
    """What a (re)connecting phone must see: unexpired pending alerts, and the incidents it accepted."""
    now = _now()
    frames = []
    for view in await alert_views(session, responder_id=responder_id):
        if view.status in PENDING and view.expires_at > now:
            frames.append(alert_frame(view))
        elif view.status in ENGAGED:
            frames.append(incident_frame(view))
    return frames


async def cancel_frames(
    session: AsyncSession, responder_id: uuid.UUID, alert_ids: list[uuid.UUID]
) -> list[dict[str, Any]]:
    """A `cancel` for each of these alerts of the responder that has been cancelled (incident
    closed, or stood down), with its reason: for a phone that may have missed the live one."""
    if not alert_ids:
        return []
    query = select(Alert.id, Alert.incident_id).where(
        Alert.id.in_(alert_ids), Alert.responder_id == responder_id, Alert.status == "cancelled"
    )
    query = query.add_columns(Alert.cancel_reason)
    rows = (await session.execute(query)).all()
    return [cancel_frame(str(a), str(incident), reason or CLOSED_REASON) for a, incident, reason in rows]


async def record_socket_attempt(session: AsyncSession, ctx: DispatchContext, alert_id: uuid.UUID) -> None:
    """A socket took the alert frame: an attempt (event `attempt`, channel `socket`), not a
    delivery. Only while no receipt has come: a replay to a phone that confirmed is not news."""
    now = _now()
    rows = (
        (
            await session.execute(
                update(Alert)
                .where(Alert.id == alert_id, Alert.status == "sent")
                .values(socket_at=func.coalesce(Alert.socket_at, now))
                .returning(Alert)
            )
        )
        .scalars()
        .all()
    )
    logged = [attempt_event(session, a, "socket", 0, "sent", "written into an open socket") for a in rows]
    ATTEMPTS.labels("socket", "sent").inc(len(rows))
    await session.commit()
    await events.publish(ctx.fanout, logged)


def attempt_event(
    session: AsyncSession,
    alert: Alert,
    channel: str,
    step: int,
    outcome: str,
    detail: str = "",
    provider_id: str | None = None,
    kind: str = "attempt",
) -> Any:
    """One try of one channel for one alert, and what came of it (`attempt` or `attempt_skipped`)."""
    return _event(
        session,
        alert,
        kind,
        channel=channel,
        step=step,
        outcome=outcome,
        detail=detail,
        provider_id=provider_id,
    )


def _reached(alert: Alert, via: str, now: datetime) -> bool:
    """Record that `via` reached the phone, unless a receipt came first; True when it is news."""
    if alert.delivered_via is not None:
        return False
    alert.delivered_via, alert.delivered_at, alert.ladder_due_at = via, now, None
    RECEIPTS.labels(via).observe(max(0.0, (now - alert.created_at).total_seconds()))
    return True


async def receive(
    session: AsyncSession, ctx: DispatchContext, responder_id: uuid.UUID, alert_id: uuid.UUID, via: str
) -> Alert:
    """The phone's receipt: the alert is in front of the person. `sent` → `delivered` (event
    `delivered` naming the channel), and the ladder stops. A receipt for an alert already
    delivered, answered or ended changes nothing (the phone may send it twice, or late)."""
    alert, _ = await _alert_of(session, responder_id, alert_id)
    now = _now()
    if alert.status != "sent" or alert.expires_at <= now:
        await session.commit()  # nothing changed; releases the row (a rollback would expire it)
        return alert
    _reached(alert, via, now)
    alert.status, alert.updated_at = "delivered", now
    logged = [_event(session, alert, "delivered", delivered_via=via)]
    await session.commit()
    await events.publish(ctx.fanout, logged)
    return alert


def _event(session: AsyncSession, alert: Alert, kind: str, **data: Any) -> Any:
    return events.record(
        session,
        alert.incident_id,
        kind,
        alert_id=str(alert.id),
        responder_id=str(alert.responder_id),
        role=alert.role,
        **data,
    )


async def _alert_of(
    session: AsyncSession, responder_id: uuid.UUID, alert_id: uuid.UUID
) -> tuple[Alert, Incident]:
    """The responder's own alert and its incident, the alert's row locked; 404 / 403 otherwise."""
    row = (
        await session.execute(
            select(Alert, Incident)
            .join(Incident, Incident.id == Alert.incident_id)
            .where(Alert.id == alert_id)
            .with_for_update(of=Alert)
        )
    ).first()
    if row is None:
        raise DispatchError(404, "alert_id", "no such alert")
    alert, incident = row
    if alert.responder_id != responder_id:
        raise DispatchError(403, "alert_id", "this alert was sent to another responder")
    return alert, incident


async def _answerable(
    session: AsyncSession, responder_id: uuid.UUID, alert_id: uuid.UUID
) -> tuple[Alert, Incident]:
    """The responder's own alert of an open incident, both rows locked, the incident's first (the
    order closing and the dispatch clock take them in): answers to one incident are decided one
    after the other. 404 / 403 / 409 otherwise."""
    owner = (
        await session.execute(select(Alert.incident_id, Alert.responder_id).where(Alert.id == alert_id))
    ).first()
    if owner is None:
        raise DispatchError(404, "alert_id", "no such alert")
    if owner.responder_id != responder_id:
        raise DispatchError(403, "alert_id", "this alert was sent to another responder")
    lock = {"populate_existing": True}  # the rows as they are once locked, not as first read
    # FOR NO KEY UPDATE: writers of the incident's events and alerts (the ladder) only need KEY
    # SHARE on it for their foreign keys; FOR UPDATE made them wait while this waited for their
    # alert row, a deadlock.
    incident_row = select(Incident).where(Incident.id == owner.incident_id).with_for_update(key_share=True)
    incident = (await session.execute(incident_row.execution_options(**lock))).scalar_one()
    alert_row = select(Alert).where(Alert.id == alert_id).with_for_update()
    alert = (await session.execute(alert_row.execution_options(**lock))).scalar_one()
    if incident.status != "open":
        raise DispatchError(409, "alert_id", "the incident is closed")
    return alert, incident


async def _own_alert(
    session: AsyncSession, responder_id: uuid.UUID, alert_id: uuid.UUID
) -> tuple[Alert, Incident]:
    """`_alert_of`, and 409 when the incident is closed (nothing more may change)."""
    alert, incident = await _alert_of(session, responder_id, alert_id)
    if incident.status != "open":
        raise DispatchError(409, "alert_id", "the incident is closed")
    return alert, incident


async def respond(
    session: AsyncSession,
    ctx: DispatchContext,
    responder_id: uuid.UUID,
    alert_id: uuid.UUID,
    accept: bool,
    via: str = "socket",
    before_commit: Callable[[], Awaitable[None]] | None = None,
) -> AlertView | None:
    """Accept or decline; on accept returns the view for the exact-location `incident` frame, which
    carries the role decided at this accept and the AED to bring.

    An answer proves the alert reached the person: when no receipt came first, `via` (the channel
    the answer came through) is recorded as how it was reached, and the ladder stops either way.
    In the same transaction the answer is counted in the responder's acceptance tallies, and the
    policy decides what it changes (`decisions.after_answer`: the role, a stand-down,
    replacements), published after the commit.
    `before_commit` runs inside the answer's transaction (a one-time code spends its answer there).
    An accept keeps where the phone stood (`accepted_lat/lng`, the origin of the `en_route`
    geofence) and wakes this worker's arrival watcher.
    """
    origin = await _standing(ctx, responder_id) if accept else None  # before any row is locked
    alert, incident = await _answerable(session, responder_id, alert_id)
    if alert.status not in PENDING:
        raise DispatchError(409, "alert_id", f"already answered: the alert is {alert.status}")
    now = _now()
    if alert.expires_at <= now:
        raise DispatchError(409, "alert_id", "the alert has expired")
    if before_commit is not None:
        await before_commit()
    reached = _reached(alert, via, now)
    outcome: Outcome = "accepted" if accept else "declined"
    alert.status, alert.updated_at, alert.ladder_due_at = outcome, now, None
    alert.answered_at = now
    if origin is not None:
        alert.accepted_lat, alert.accepted_lng = origin.lat, origin.lng
    answered = _event(session, alert, alert.status, **({"delivered_via": via} if reached else {}))
    changes = await decisions.after_answer(session, ctx, incident, alert)
    changes.logged.insert(0, answered)
    # Counted last, so the shared tally rows (the team's, the category's) are locked only for the
    # commit: taken before the decisions, they were held while this answer waited for alert rows
    # an expiry had locked, and that expiry waited for the tallies (a deadlock).
    await ctx.acceptance.record(session, alert.responder_id, outcome, alert.created_at)
    await session.commit()
    if accept:
        ctx.engaged_changed.set()
    await changes.publish(session, ctx)
    if not accept:
        return None
    return (await alert_views(session, [alert.id]))[0]


async def _standing(ctx: DispatchContext, responder_id: uuid.UUID) -> Point | None:
    """Where the live store last saw the responder, if that is fresh (within the store's staleness)
    and accurate enough for a geofence; None otherwise, or when the store cannot say (the accept
    goes on: the first fix after it becomes the origin, `dispatch.geofence`)."""
    try:
        position = await ctx.store.get(str(responder_id))
    except Exception:
        log.warning("no accept position for responder %s: live store unavailable", responder_id)
        return None
    if position is None or time.time() - position.ts > ctx.settings.staleness_s:
        return None
    if position.accuracy_m is not None and position.accuracy_m > ctx.settings.geofence_max_accuracy_m:
        return None
    return Point(position.lat, position.lng)


async def report_status(
    session: AsyncSession, ctx: DispatchContext, responder_id: uuid.UUID, alert_id: uuid.UUID, status: str
) -> None:
    """en_route / on_scene / aed_picked_up after accepting, tapped by the responder (`source:
    manual`); the time is kept on the alert (`en_route_at`, ...) unless the phone's fixes set it
    first. `aed_picked_up` is for AED runners only and leaves the status as it is; tapped twice,
    or after the fixes showed it, it is a 409 like a repeated en_route."""
    alert, _ = await _own_alert(session, responder_id, alert_id)
    if alert.status not in NEXT_STATUS[status]:
        raise DispatchError(409, "status", f"cannot go from {alert.status} to {status}")
    time_column = f"{status}_at"
    if status == "aed_picked_up":
        if alert.role != "fetch_aed":
            raise DispatchError(409, "status", "only a responder fetching an AED picks one up")
        if alert.aed_picked_up_at is not None:
            raise DispatchError(409, "status", "the AED is already picked up")
    now = _now()
    if status in MOVES_STATUS:
        alert.status = status
    alert.updated_at = now
    if getattr(alert, time_column) is None:
        setattr(alert, time_column, now)
    logged = [_event(session, alert, status, source="manual")]
    await session.commit()
    ctx.engaged_changed.set()
    await events.publish(ctx.fanout, logged)
    frame = mark_frame(str(alert.id), status, getattr(alert, time_column), "manual")
    await ctx.fanout.to_responder(str(alert.responder_id), frame)


async def expire_due(session: AsyncSession, ctx: DispatchContext) -> int:
    """Expire unanswered alerts past their time; safe to run on every worker at once. Each counts
    as an unanswered alert of its responder, in the same transaction."""
    rows = (
        (
            await session.execute(
                update(Alert)
                .where(Alert.status.in_(PENDING), Alert.expires_at <= _now())
                .values(status="expired", updated_at=_now())
                .returning(Alert)
            )
        )
        .scalars()
        .all()
    )
    if not rows:
        await session.rollback()
        return 0
    await ctx.acceptance.record_all(
        session, [Answer(a.responder_id, "unanswered", a.created_at) for a in rows]
    )
    logged = [_event(session, a, "expired") for a in rows]
    await session.commit()
    await events.publish(ctx.fanout, logged)
    return len(rows)
