"""A responder's side of an alert: delivery, accept/decline, en route/on scene, expiry.

Every transition is a conditional UPDATE (only from the states it may leave), so two sockets of
the same phone, or two workers expiring alerts at once, can never apply a change twice.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch import events
from dispatch.context import DispatchContext
from dispatch.frames import AlertView, alert_frame, cancel_frame, incident_frame
from dispatch.models import ENGAGED, PENDING, Alert, Incident
from dispatch.service import DispatchError, alert_views

NEXT_STATUS = {"en_route": ("accepted",), "on_scene": ("accepted", "en_route")}


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
    closed): for a phone that may have missed the live one."""
    if not alert_ids:
        return []
    query = select(Alert.id, Alert.incident_id).where(
        Alert.id.in_(alert_ids), Alert.responder_id == responder_id, Alert.status == "cancelled"
    )
    rows = (await session.execute(query)).all()
    return [cancel_frame(str(alert), str(incident), "incident closed") for alert, incident in rows]


async def mark_delivered(session: AsyncSession, ctx: DispatchContext, alert_ids: list[uuid.UUID]) -> None:
    rows = (
        (
            await session.execute(
                update(Alert)
                .where(Alert.id.in_(alert_ids), Alert.status == "sent")
                .values(status="delivered", updated_at=_now())
                .returning(Alert)
            )
        )
        .scalars()
        .all()
    )
    logged = [_event(session, a, "delivered") for a in rows]
    await session.commit()
    await events.publish(ctx.fanout, logged)


def _event(session: AsyncSession, alert: Alert, kind: str) -> Any:
    return events.record(
        session,
        alert.incident_id,
        kind,
        alert_id=str(alert.id),
        responder_id=str(alert.responder_id),
        role=alert.role,
    )


async def _own_alert(
    session: AsyncSession, responder_id: uuid.UUID, alert_id: uuid.UUID
) -> tuple[Alert, Incident]:
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
    if incident.status != "open":
        raise DispatchError(409, "alert_id", "the incident is closed")
    return alert, incident


async def respond(
    session: AsyncSession, ctx: DispatchContext, responder_id: uuid.UUID, alert_id: uuid.UUID, accept: bool
) -> AlertView | None:
    """Accept or decline; on accept returns the view for the exact-location `incident` frame."""
    alert, _ = await _own_alert(session, responder_id, alert_id)
    if alert.status not in PENDING:
        raise DispatchError(409, "alert_id", f"already answered: the alert is {alert.status}")
    if alert.expires_at <= _now():
        raise DispatchError(409, "alert_id", "the alert has expired")
    alert.status = "accepted" if accept else "declined"
    alert.updated_at = _now()
    logged = [_event(session, alert, alert.status)]
    await session.commit()
    await events.publish(ctx.fanout, logged)
    if not accept:
        return None
    return (await alert_views(session, [alert.id]))[0]


async def report_status(
    session: AsyncSession, ctx: DispatchContext, responder_id: uuid.UUID, alert_id: uuid.UUID, status: str
) -> None:
    """en_route / on_scene after accepting."""
    alert, _ = await _own_alert(session, responder_id, alert_id)
    if alert.status not in NEXT_STATUS[status]:
        raise DispatchError(409, "status", f"cannot go from {alert.status} to {status}")
    alert.status = status
    alert.updated_at = _now()
    logged = [_event(session, alert, status)]
    await session.commit()
    await events.publish(ctx.fanout, logged)


async def expire_due(session: AsyncSession, ctx: DispatchContext) -> int:
    """Expire unanswered alerts past their time; safe to run on every worker at once."""
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
    logged = [_event(session, a, "expired") for a in rows]
    await session.commit()
    await events.publish(ctx.fanout, logged)
    return len(rows)
