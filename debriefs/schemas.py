"""Bodies of the debrief endpoints: the responder's few answers, and the coordinators' follow-up."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from core.inputs import InputModel, Text


class Went(StrEnum):
    """How it went, in the responder's own words (`debriefs.models.WENT`, checked by a unit test)."""

    well = "well"
    ok = "ok"
    hard = "hard"


class FollowUpState(StrEnum):
    open = "open"
    done = "done"


Note = Annotated[Text, StringConstraints(strip_whitespace=True, max_length=2000)]


class DebriefIn(InputModel):
    went: Went
    injured: bool = Field(description="hurt during the rescue: a coordinator follows up")
    wants_support: bool = Field(description="would like to talk to someone: a coordinator follows up")
    note: Note | None = None


class DebriefOut(BaseModel):
    id: uuid.UUID
    alert_id: uuid.UUID
    incident_id: uuid.UUID
    went: str
    injured: bool
    wants_support: bool
    note: str | None
    answered_at: datetime
    follow_up: str = Field(description="`open` when injured or wants_support, else `none`")


class PendingDebrief(BaseModel):
    """An incident the responder turned out for whose engagement ended, still without a debrief."""

    alert_id: uuid.UUID
    incident_id: uuid.UUID
    category: str
    incident_opened_at: datetime
    accepted_at: datetime
    ended_at: datetime
    reached_patient: bool = Field(description="whether they got to the patient (`on_scene_at` set)")


class FollowUpDone(InputModel):
    note: Annotated[Note, StringConstraints(min_length=1)] = Field(
        description="what was done, for the record"
    )


class FollowUpOut(BaseModel):
    """One follow-up as a coordinator needs it: whom to call, about what, and what they said."""

    debrief_id: uuid.UUID
    state: str
    responder_id: uuid.UUID
    responder_name: str | None = Field(description="None for an erased account")
    responder_phone: str | None
    team: str | None = Field(description="the team's path, e.g. shenzhen/futian/shatou")
    incident_id: uuid.UUID
    incident_opened_at: datetime
    category: str
    went: str
    injured: bool
    wants_support: bool
    note: str | None
    answered_at: datetime
    done_at: datetime | None = None
    done_by: str | None = None
    done_note: str | None = None
