"""Bodies of the privacy endpoints: the erasure request and its report, and the download of
everything held about a responder (`GET /v1/responders/{id}/data`).

The download names no secret: of tokens only their label and dates (the hash stays), of push
subscriptions only the endpoint (the browser's keys stay), and no acceptance estimate (a score
about the person the service keeps from them, `responders.router.get_responder`), only the
counts of their own answers it is made from.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from core.inputs import InputModel


class EraseIn(InputModel):
    confirm: Literal["erase"] = Field(
        description="the word `erase`: the account, its certificates, tokens and subscriptions go for "
        "good, and the incident record keeps an anonymous stand-in"
    )


class ErasureOut(BaseModel):
    """What erasing the account removed (all zero when it had been erased already)."""

    id: uuid.UUID
    erased_at: datetime
    already_erased: bool = Field(description="true when an earlier request erased it: nothing changed now")
    certificates: int = 0
    tokens_revoked: int = 0
    push_subscriptions: int = 0
    acceptance_tallies: int = Field(0, description="tallies of their own answers (per time-of-day band)")
    debrief_notes: int = Field(0, description="debriefs whose free-text notes were cleared")
    alert_positions: int = Field(0, description="alerts whose position at accepting was erased")
    event_positions: int = Field(0, description="incident events whose position was erased")
    centre_copies: int = Field(
        0, description="feedback to emergency centres (tallies, outbox bodies) their name and phone left"
    )
    duty_session_closed: bool = False
    live_position: bool = Field(False, description="true when a live position was held and is now deleted")


class ProfileData(BaseModel):
    id: uuid.UUID
    external_id: str
    name: str
    phone: str | None
    category: str
    mode: str
    alert_places: str
    active: bool
    on_duty: bool
    created_at: datetime
    updated_at: datetime


class TeamData(BaseModel):
    path: str
    name: str
    level: int


class CertificateData(BaseModel):
    kind: str
    number: str
    issuer: str | None
    valid_from: date
    valid_until: date
    verified: bool


class LivePositionData(BaseModel):
    """The live position held while on duty (WGS-84); overwritten by each fix, gone off duty."""

    lat: float
    lng: float
    ts: datetime
    accuracy_m: float | None
    mode: str


class DutySessionData(BaseModel):
    started_at: datetime
    ended_at: datetime | None


class EventData(BaseModel):
    id: int
    ts: datetime
    kind: str
    data: dict[str, Any]


class AlertData(BaseModel):
    """An alert sent to the person, with the incident's category and times (not the patient's
    place: that is about the patient) and the incident events that name them."""

    id: uuid.UUID
    incident_id: uuid.UUID
    incident_category: str
    incident_opened_at: datetime
    incident_closed_at: datetime | None
    role: str
    status: str
    eta_s: float
    distance_m: float
    created_at: datetime
    answered_at: datetime | None
    delivered_via: str | None
    cancel_reason: str | None
    accepted_lat: float | None = Field(
        description="where they stood when accepting (erased after the retention)"
    )
    accepted_lng: float | None
    en_route_at: datetime | None
    aed_picked_up_at: datetime | None
    on_scene_at: datetime | None
    events: list[EventData]


class DebriefData(BaseModel):
    id: uuid.UUID
    incident_id: uuid.UUID
    alert_id: uuid.UUID
    went: str
    injured: bool
    wants_support: bool
    note: str | None
    answered_at: datetime
    follow_up: str
    follow_up_done_at: datetime | None
    follow_up_note: str | None


class PushSubscriptionData(BaseModel):
    endpoint: str
    created_at: datetime
    updated_at: datetime


class TokenData(BaseModel):
    id: uuid.UUID
    role: str
    label: str
    created_at: datetime
    revoked_at: datetime | None


class AnswersData(BaseModel):
    """Their own answers to alerts in one time-of-day band (day 07-19 local, night)."""

    band: Literal["day", "night"]
    accepted: int
    declined: int
    unanswered: int


class ResponderData(BaseModel):
    """Everything the service holds about one responder, as of `generated_at`."""

    generated_at: datetime
    profile: ProfileData
    team: TeamData | None
    certificates: list[CertificateData]
    live_position: LivePositionData | None
    duty_sessions: list[DutySessionData]
    alerts: list[AlertData]
    debriefs: list[DebriefData]
    push_subscriptions: list[PushSubscriptionData]
    tokens: list[TokenData]
    answers: list[AnswersData]
