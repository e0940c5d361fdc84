"""Bodies of the incident endpoints and the websocket frames responders send."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints

from core.inputs import InputModel, Text
from geo.crs import Crs
from geo.validation import CrsField, Latitude, Longitude


class IncidentCategory(StrEnum):
    cardiac_arrest = "cardiac_arrest"
    unconscious = "unconscious"
    choking = "choking"
    severe_bleeding = "severe_bleeding"
    other_medical = "other_medical"


class IncidentPlace(StrEnum):
    """Where the patient is: decides who may be alerted (the responders' tiers)."""

    public = "public"  # street, park, station, shop, office: every qualified responder
    residential = "residential"  # a home: only responders whose tier allows homes


class IncidentCreate(InputModel):
    lat: Latitude
    lng: Longitude
    crs: CrsField = Crs.wgs84
    category: IncidentCategory
    place: IncidentPlace = Field(
        IncidentPlace.public,
        description="`residential` alerts only responders whose tier (`alert_places`) allows homes",
    )
    address: Annotated[Text, StringConstraints(strip_whitespace=True, max_length=500)] | None = None
    note: Annotated[Text, StringConstraints(max_length=2000)] | None = None
    reach_s: float | None = Field(None, description="seconds; default and bounds from settings")


class AttemptOut(BaseModel):
    """One try of one channel for an alert (from the incident's log)."""

    channel: str
    step: int
    outcome: str = Field(description="sent, provider_error, unreachable, or skipped")
    detail: str = ""
    at: datetime


class AlertOut(BaseModel):
    alert_id: uuid.UUID
    responder_id: uuid.UUID
    role: str = Field(
        description="`undecided` until the responder accepts; then `fetch_aed` (bring `aed_id`) or `cpr` "
        "(straight to the patient), chosen given who accepted before"
    )
    eta_s: float = Field(description="seconds to the patient: direct until decided, then for the role")
    distance_m: float
    aed_id: uuid.UUID | None = Field(None, description="the AED this responder brings (decided roles)")
    may_fetch_aed: bool = Field(False, description="whether the alert told them they may bring an AED")
    aed_option_id: uuid.UUID | None = Field(
        None, description="the AED they may be asked to bring (the nearest free one when alerted)"
    )
    status: str = "sent"
    cancel_reason: str | None = Field(
        None,
        description="why a `cancelled` alert ended: `incident closed`, or `enough_responders` (stood down)",
    )
    delivered_via: str | None = Field(
        None, description="the channel whose receipt (or answer) showed the alert reached the phone"
    )
    attempts: list[AttemptOut] = Field(
        default_factory=list, description="how the alert was tried so far (in an incident's detail only)"
    )
    answered_at: datetime | None = Field(None, description="when the responder accepted or declined")
    en_route_at: datetime | None = Field(
        None, description="when they set off: their phone's fixes (event source `auto`) or a tap (`manual`)"
    )
    aed_picked_up_at: datetime | None = Field(None, description="when an AED runner had the AED")
    on_scene_at: datetime | None = Field(None, description="when they reached the patient")


class AedConsidered(BaseModel):
    id: uuid.UUID
    name: str
    lat: float
    lng: float
    distance_m: float
    open_now: bool


class CoverageOut(BaseModel):
    covered: bool
    fastest_eta_s: float | None
    aed_eta_s: float | None
    positions: Literal["live", "warming", "unavailable"] = Field(
        "live",
        description="The responders' positions the plan saw: `live`; `warming` (Redis lost them and "
        "phones are sending them again); `unavailable` (Redis down: nobody could be alerted yet). "
        "Until a plan sees live positions the incident is re-planned every few seconds.",
    )


class IncidentOut(BaseModel):
    id: uuid.UUID
    status: str
    category: str
    place: IncidentPlace
    lat: float
    lng: float
    crs: Crs
    address: str | None
    note: str | None
    reach_s: float
    coverage: CoverageOut
    created_at: datetime
    closed_at: datetime | None = None
    alerts: list[AlertOut]
    aeds: list[AedConsidered] = Field(default_factory=list)
    agency: str | None = Field(None, description="the emergency centre that sent it (None: opened here)")
    tracking_id: str | None = Field(None, description="the centre's incident tracking id (EIDO)")
    location_uncertainty_m: float | None = Field(
        None, description="how far from the point the patient may be, as the centre's location said"
    )
    centre_changed: list[str] | None = Field(None, description="facts the centre changed on its last update")


class EventOut(BaseModel):
    seq: int
    ts: datetime
    kind: str
    data: dict[str, Any]


class IncidentDetail(IncidentOut):
    events: list[EventOut]


# --- websocket frames in (responder → server) -------------------------------------------------------
class AckFrame(InputModel):
    type: Literal["ack"]
    alert_id: uuid.UUID
    response: Literal["accept", "decline"]


class StatusFrame(InputModel):
    type: Literal["status"]
    alert_id: uuid.UUID
    status: Literal["en_route", "on_scene", "aed_picked_up"] = Field(
        description="`aed_picked_up`: a `fetch_aed` runner has the AED (the alert's status stays)"
    )


class ReceivedFrame(InputModel):
    """The phone has put the alert in front of the person: the receipt that makes it `delivered`."""

    type: Literal["received"]
    alert_id: uuid.UUID
