"""Bodies of the outcome endpoints: what a dispatcher or the EMS crew reports after closing."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, Field, StringConstraints

from core.inputs import InputModel, Text


class Witnessed(StrEnum):
    """Who saw the collapse: the values of `outcomes.models.WITNESSED` (checked by a unit test)."""

    unwitnessed = "unwitnessed"
    bystander = "bystander"
    first_responder = "first_responder"
    ems = "ems"


FACTS = (
    "witnessed",
    "bystander_cpr",
    "first_responder_cpr_at",
    "aed_attached",
    "aed_attached_at",
    "shock_delivered",
    "first_shock_at",
    "ems_arrival_at",
    "rosc",
    "survived_admission",
    "survived_discharge",
    "note",
)
"""The facts of an outcome, in the order the Utstein template asks them."""
TIMES = ("first_responder_cpr_at", "aed_attached_at", "first_shock_at", "ems_arrival_at")


class OutcomeIn(InputModel):
    """An upsert of the outcome: each field sent is stored (null: not known), each field left out
    keeps what was stored, so the EMS centre can add survival to discharge weeks later without
    resending the rest. The record as a whole, after the change, must hold together."""

    witnessed: Witnessed | None = Field(None, description="who saw the collapse; null: not known")
    bystander_cpr: bool | None = Field(None, description="CPR by bystanders before our responders came")
    first_responder_cpr_at: AwareDatetime | None = Field(None, description="when our responders began CPR")
    aed_attached: bool | None = Field(None, description="an AED's pads were put on the patient")
    aed_attached_at: AwareDatetime | None = None
    shock_delivered: bool | None = Field(None, description="the AED delivered a shock")
    first_shock_at: AwareDatetime | None = None
    ems_arrival_at: AwareDatetime | None = Field(
        None, description="when the ambulance crew reached the patient"
    )
    rosc: bool | None = Field(None, description="any return of spontaneous circulation")
    survived_admission: bool | None = Field(
        None, description="alive at hospital admission (Utstein: survived event)"
    )
    survived_discharge: bool | None = Field(None, description="alive at hospital discharge")
    note: Annotated[Text, StringConstraints(max_length=2000)] | None = None


class OutcomeOut(BaseModel):
    incident_id: uuid.UUID
    witnessed: str | None
    bystander_cpr: bool | None
    first_responder_cpr_at: datetime | None
    aed_attached: bool | None
    aed_attached_at: datetime | None
    shock_delivered: bool | None
    first_shock_at: datetime | None
    ems_arrival_at: datetime | None
    rosc: bool | None
    survived_admission: bool | None
    survived_discharge: bool | None
    note: str | None
    recorded_by: str = Field(description="who first recorded it")
    recorded_at: datetime
    updated_at: datetime
