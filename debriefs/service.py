"""Debriefs: which incidents a responder still owes one for, taking it, and the coordinators'
follow-up list.

Definitions shared by every piece of issue 22: a responder "attended" an incident when they
accepted its alert (`answered_at` set and the status went through `accepted`: a declined alert
stays `declined`, so an alert with `answered_at` that is accepted, en route, on scene or cancelled
was accepted), whether or not they arrived. Their engagement ended when the alert was cancelled
(the incident closed, or they were stood down: `updated_at` of the `cancelled` alert) or the
incident closed. Only then is the debrief asked: mid-rescue it would be a distraction.

Debriefs are about a person's wellbeing, not the incident: they are not written to the incident's
event log, which every dispatcher console reads.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, case, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from debriefs.models import Debrief
from debriefs.schemas import DebriefIn, DebriefOut, FollowUpOut, FollowUpState, PendingDebrief
from dispatch.models import ENGAGED, Alert, Incident
from responders.models import Responder, Team

ATTENDED = (*ENGAGED, "cancelled")
"""Statuses of an alert that, with `answered_at` set, was accepted."""
LONGEST_INCIDENT = timedelta(days=1)
"""How long before its end an incident may have opened and still be asked about: the time bound
on `alerts.opened_at` that lets PostgreSQL skip old months (an incident open longer is not a
rescue a debrief is about)."""
FOLLOW_UPS_SHOWN = 500


class DebriefError(ValueError):
    """A request refused: `status` is the HTTP code, `str()` names the field and the rule."""

    def __init__(self, status: int, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}")
        self.status = status


def _now() -> datetime:
    return datetime.now(UTC)


def _attended() -> ColumnElement[bool]:
    return Alert.answered_at.is_not(None) & Alert.status.in_(ATTENDED)


def _ended_at() -> ColumnElement[datetime]:
    """When the engagement ended: the alert's cancellation, else the incident's closing."""
    return case((Alert.status == "cancelled", Alert.updated_at), else_=Incident.closed_at)


def _has_ended() -> ColumnElement[bool]:
    return or_(Alert.status == "cancelled", Incident.status == "closed")


async def pending(
    session: AsyncSession, responder_id: uuid.UUID, window: timedelta, now: datetime | None = None
) -> list[PendingDebrief]:
    """Attended incidents whose engagement ended within `window` before now and that have no
    debrief yet, the most recently ended first."""
    now = now or _now()
    cutoff = now - window
    ended_at = _ended_at().label("ended_at")
    query = (
        select(Alert, Incident.category, Incident.created_at, ended_at)
        .join(Incident, Incident.id == Alert.incident_id)
        .outerjoin(Debrief, Debrief.alert_id == Alert.id)
        .where(
            Alert.responder_id == responder_id,
            Alert.opened_at >= cutoff - LONGEST_INCIDENT,
            _attended(),
            _has_ended(),
            _ended_at() >= cutoff,
            Debrief.id.is_(None),
        )
        .order_by(ended_at.desc())
    )
    return [
        PendingDebrief(
            alert_id=alert.id,
            incident_id=alert.incident_id,
            category=category,
            incident_opened_at=opened_at,
            accepted_at=alert.answered_at,
            ended_at=ended,
            reached_patient=alert.on_scene_at is not None,
        )
        for alert, category, opened_at, ended in (await session.execute(query)).all()
    ]


@dataclass(frozen=True, slots=True)
class _Answered:
    alert: Alert
    incident: Incident


async def _debriefable(session: AsyncSession, responder_id: uuid.UUID, alert_id: uuid.UUID) -> _Answered:
    """The alert, when this responder may debrief it now; else the refusal naming why."""
    row = (
        await session.execute(
            select(Alert, Incident)
            .join(Incident, Incident.id == Alert.incident_id)
            .where(Alert.id == alert_id)
        )
    ).first()
    if row is None:
        raise DebriefError(404, "alert_id", f"no alert {alert_id}")
    alert, incident = row
    if alert.responder_id != responder_id:
        raise DebriefError(403, "alert_id", "this alert was sent to another responder")
    if alert.answered_at is None or alert.status not in ATTENDED:
        raise DebriefError(
            409, "alert_id", "the alert was never accepted: a debrief follows an accepted alert"
        )
    if alert.status != "cancelled" and incident.status != "closed":
        raise DebriefError(409, "alert_id", "the incident is still going: the debrief comes after it ends")
    return _Answered(alert, incident)


def debrief_out(d: Debrief) -> DebriefOut:
    return DebriefOut(
        id=d.id,
        alert_id=d.alert_id,
        incident_id=d.incident_id,
        went=d.went,
        injured=d.injured,
        wants_support=d.wants_support,
        note=d.note,
        answered_at=d.answered_at,
        follow_up=d.follow_up,
    )


async def give(
    session: AsyncSession, responder_id: uuid.UUID, alert_id: uuid.UUID, body: DebriefIn
) -> DebriefOut:
    """Take the responder's debrief of one attended incident (once: 409 the second time). An
    injury or a wish for support opens a follow-up for the programme's coordinators."""
    answered = await _debriefable(session, responder_id, alert_id)
    if await already_given(session, alert_id):
        raise DebriefError(409, "alert_id", "a debrief was already given for this alert")
    debrief = Debrief(
        id=uuid.uuid4(),
        alert_id=alert_id,
        incident_id=answered.incident.id,
        responder_id=responder_id,
        went=body.went.value,
        injured=body.injured,
        wants_support=body.wants_support,
        note=body.note or None,
        answered_at=_now(),
        follow_up="open" if body.injured or body.wants_support else "none",
    )
    session.add(debrief)
    try:
        await session.commit()
    except IntegrityError:  # the same answer sent twice at once: the unique alert_id keeps one
        await session.rollback()
        raise DebriefError(409, "alert_id", "a debrief was already given for this alert") from None
    return debrief_out(debrief)


async def already_given(session: AsyncSession, alert_id: uuid.UUID) -> bool:
    return (await session.scalar(select(Debrief.id).where(Debrief.alert_id == alert_id))) is not None


async def follow_ups(session: AsyncSession, state: FollowUpState) -> list[FollowUpOut]:
    """Follow-ups in one state: open ones the longest waiting first (they are the coordinators'
    to-do list), done ones the most recently done first."""
    order = Debrief.answered_at.asc() if state is FollowUpState.open else Debrief.follow_up_done_at.desc()
    return await _follow_ups(session, Debrief.follow_up == state.value, order=order)


async def _follow_ups(
    session: AsyncSession, *where: ColumnElement[bool], order: ColumnElement[object]
) -> list[FollowUpOut]:
    query = (
        select(Debrief, Responder.name, Responder.phone, Team.path, Incident.created_at, Incident.category)
        .join(Responder, Responder.id == Debrief.responder_id)
        .outerjoin(Team, Team.id == Responder.team_id)
        .join(Incident, Incident.id == Debrief.incident_id)
        .where(*where)
        .order_by(order)
        .limit(FOLLOW_UPS_SHOWN)
    )
    return [
        FollowUpOut(
            debrief_id=d.id,
            state=d.follow_up,
            responder_id=d.responder_id,
            responder_name=name,
            responder_phone=phone,
            team=team,
            incident_id=d.incident_id,
            incident_opened_at=opened_at,
            category=category,
            went=d.went,
            injured=d.injured,
            wants_support=d.wants_support,
            note=d.note,
            answered_at=d.answered_at,
            done_at=d.follow_up_done_at,
            done_by=d.follow_up_done_by,
            done_note=d.follow_up_note,
        )
        for d, name, phone, team, opened_at, category in (await session.execute(query)).all()
    ]


async def mark_done(session: AsyncSession, debrief_id: uuid.UUID, by: str, note: str) -> FollowUpOut:
    """Close an open follow-up with what was done. Conditional, so two coordinators marking it at
    once cannot both succeed: the second gets 409."""
    done = await session.scalar(
        update(Debrief)
        .where(Debrief.id == debrief_id, Debrief.follow_up == "open")
        .values(follow_up="done", follow_up_done_at=_now(), follow_up_done_by=by, follow_up_note=note)
        .returning(Debrief.id)
    )
    if done is None:
        state = await session.scalar(select(Debrief.follow_up).where(Debrief.id == debrief_id))
        if state is None:
            raise DebriefError(404, "debrief_id", f"no debrief {debrief_id}")
        raise DebriefError(409, "debrief_id", f"the follow-up is not open (it is {state})")
    await session.commit()
    return (await _follow_ups(session, Debrief.id == debrief_id, order=Debrief.id))[0]
