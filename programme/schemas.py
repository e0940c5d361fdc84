"""The programme report as the API answers it (JSON; the CSV has the same columns, `programme.csv`)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field


class Grouping(StrEnum):
    """What the rows are: districts or streets (where incidents happened; responders by their team's
    place), teams (by path), or the city's calendar months."""

    district = "district"
    street = "street"
    team = "team"
    month = "month"


class ReportFormat(StrEnum):
    json = "json"
    csv = "csv"


class ProgrammeRow(BaseModel):
    """One group's figures. Shares are null when there is nothing to divide by (no incidents, no
    answers), never 0: "no incidents" is not "never in time"."""

    key: str = Field(
        description="district or 'district/street' (English names), team path, 'YYYY-MM', "
        "'outside' (no district / street / team) or 'total'"
    )
    name: str | None = Field(None, description="district or street, English")
    name_zh: str | None = Field(None, description="district or street, Chinese")
    district: str | None = Field(None, description="a street's district, English")
    district_zh: str | None = Field(None, description="a street's district, Chinese")
    incidents: int = Field(
        description="incidents opened in the window (team rows: those a member was alerted to)"
    )
    responder_5min: float | None = Field(
        description="share of incidents with a responder at the patient ≤ 300 s"
    )
    aed_5min: float | None = Field(description="share of incidents with an AED at the patient ≤ 300 s")
    alerts: int = Field(description="alerts sent for those incidents (team rows: to members)")
    answered: int = Field(description="alerts accepted, declined or expired")
    accepted: int = Field(description="alerts accepted (whatever happened after)")
    acceptance_rate: float | None = Field(description="accepted ÷ answered")
    median_accept_s: float | None = Field(description="median seconds from an alert sent to its accept")
    alerts_per_incident: float | None
    ran_for_nothing: int = Field(description="accepted alerts cancelled before the responder was on scene")
    active_responders: int = Field(description="distinct responders with duty time in the window")
    on_duty_hours: float


class ProgrammeReport(BaseModel):
    start: datetime = Field(serialization_alias="from")
    end: datetime = Field(serialization_alias="to")
    by: Grouping
    time_zone: str
    rows: list[ProgrammeRow]
    total: ProgrammeRow
