"""What the service record answers over HTTP."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field


class PointsRuleOut(BaseModel):
    """The rule the points were counted by (settings `points_per_*`)."""

    points_per_duty_hour: float
    points_per_incident: float
    points_per_arrival: float


class ServiceOut(BaseModel):
    """A responder's service in the window [from, to), on the city's clock."""

    responder_id: uuid.UUID
    from_: datetime = Field(serialization_alias="from", description="start of the window (inclusive)")
    to: datetime = Field(description="end of the window (exclusive); at most now for open stretches")
    on_duty_s: float = Field(description="seconds on duty, stretches clipped to the window")
    on_duty_hours: float
    incidents_attended: int = Field(description="alerts accepted in the window (arrived or stood down)")
    incident_s: float = Field(description="engagement time: accept to the alert's end, capped at 2 h")
    arrivals: int = Field(description="of the incidents attended, those where they reached the patient")
    points: float
    rule: PointsRuleOut
