"""Everything held about a responder, as one document they can download (PIPL: the right to access
and to copy one's personal information).

Read from every place the service keeps something about a person: the registry (profile, team,
certificates, duty sessions), the live store (the position, while on duty), the incident record
(the alerts sent to them and the events that name them: `responder_id`, or among those `alerted`
in a step), debriefs, push subscriptions, tokens, and the tallies of their own answers.
"""

from __future__ import annotations

import functools
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from typing import TypeVar

from sqlalchemy import ColumnElement, Select, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.auth import ApiToken
from debriefs.models import Debrief
from dispatch.channels.push_models import PushSubscription
from dispatch.events import CLOCK_SLACK
from dispatch.models import Alert, Incident, IncidentEvent
from privacy.schemas import (
    AlertData,
    AnswersData,
    CertificateData,
    DebriefData,
    DutySessionData,
    EventData,
    LivePositionData,
    ProfileData,
    PushSubscriptionData,
    ResponderData,
    TeamData,
    TokenData,
)
from responders.models import AcceptanceTally, DutySession, Responder
from responders.store import LiveLocationStore

T = TypeVar("T")


async def all_of(session: AsyncSession, query: Select[tuple[T]]) -> list[T]:
    return list((await session.execute(query)).scalars())


def about_responder(responder_id: uuid.UUID) -> ColumnElement[bool]:
    """An incident event that is about this responder: theirs, or a step that alerted them."""
    rid = str(responder_id)
    return or_(
        IncidentEvent.data["responder_id"].astext == rid, IncidentEvent.data["alerted"].contains([rid])
    )


async def _alerts(session: AsyncSession, responder_id: uuid.UUID) -> list[AlertData]:
    query = (
        select(Alert, Incident)
        .join(Incident, Incident.id == Alert.incident_id)
        .where(Alert.responder_id == responder_id)
        .order_by(Alert.created_at)
    )
    rows = (await session.execute(query)).all()
    if not rows:
        return []
    first = min(alert.opened_at for alert, _ in rows)
    events = await session.execute(
        select(IncidentEvent)
        .where(
            IncidentEvent.incident_id.in_({alert.incident_id for alert, _ in rows}),
            IncidentEvent.ts >= first - CLOCK_SLACK,
            about_responder(responder_id),
        )
        .order_by(IncidentEvent.id)
    )
    by_incident: dict[uuid.UUID, list[EventData]] = defaultdict(list)
    for e in events.scalars():
        by_incident[e.incident_id].append(EventData(id=e.id, ts=e.ts, kind=e.kind, data=e.data))
    return [
        AlertData(
            id=alert.id,
            incident_id=alert.incident_id,
            incident_category=incident.category,
            incident_opened_at=incident.created_at,
            incident_closed_at=incident.closed_at,
            role=alert.role,
            status=alert.status,
            eta_s=alert.eta_s,
            distance_m=alert.distance_m,
            created_at=alert.created_at,
            answered_at=alert.answered_at,
            delivered_via=alert.delivered_via,
            cancel_reason=alert.cancel_reason,
            accepted_lat=alert.accepted_lat,
            accepted_lng=alert.accepted_lng,
            en_route_at=alert.en_route_at,
            aed_picked_up_at=alert.aed_picked_up_at,
            on_scene_at=alert.on_scene_at,
            events=by_incident[alert.incident_id],
        )
        for alert, incident in rows
    ]


async def responder_data(
    session: AsyncSession, store: LiveLocationStore, responder: Responder
) -> ResponderData:
    """The whole document for one (not erased) responder."""
    rid = responder.id
    rows = functools.partial(all_of, session)
    duty = await rows(
        select(DutySession).where(DutySession.responder_id == rid).order_by(DutySession.started_at)
    )
    debriefs = await rows(select(Debrief).where(Debrief.responder_id == rid).order_by(Debrief.answered_at))
    pushes = await rows(select(PushSubscription).where(PushSubscription.responder_id == rid))
    tokens = await rows(select(ApiToken).where(ApiToken.responder_id == rid).order_by(ApiToken.created_at))
    tallies = await rows(
        select(AcceptanceTally).where(AcceptanceTally.level == "responder", AcceptanceTally.key == str(rid))
    )
    position = await store.get(str(rid)) if responder.on_duty else None
    team = responder.team
    return ResponderData(
        generated_at=datetime.now(UTC),
        profile=ProfileData.model_validate(responder, from_attributes=True),
        team=TeamData(path=team.path, name=team.name, level=team.level) if team else None,
        certificates=[
            CertificateData.model_validate(c, from_attributes=True) for c in responder.certificates
        ],
        live_position=LivePositionData(
            lat=position.lat,
            lng=position.lng,
            ts=datetime.fromtimestamp(position.ts, UTC),
            accuracy_m=position.accuracy_m,
            mode=position.mode,
        )
        if position
        else None,
        duty_sessions=[DutySessionData.model_validate(d, from_attributes=True) for d in duty],
        alerts=await _alerts(session, rid),
        debriefs=[DebriefData.model_validate(d, from_attributes=True) for d in debriefs],
        push_subscriptions=[PushSubscriptionData.model_validate(p, from_attributes=True) for p in pushes],
        tokens=[TokenData.model_validate(t, from_attributes=True) for t in tokens],
        answers=[AnswersData.model_validate(t, from_attributes=True) for t in tallies],
    )
