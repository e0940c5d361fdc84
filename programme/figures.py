"""From counted facts to the report's figures (pure): shares, rates and the CSV.

The database counts (`programme.queries`); the divisions and the rounding happen here once, so the
JSON and the CSV can never disagree and a hand count of a scripted week can be checked against them.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Self

from programme.schemas import ProgrammeRow

SHARE_DIGITS = 4
HOURS_DIGITS = 2
SECONDS_DIGITS = 1


@dataclass(frozen=True, slots=True)
class IncidentCounts:
    incidents: int = 0
    responder_5min: int = 0
    aed_5min: int = 0

    @classmethod
    def of(cls, counted: Sequence[Any] | None) -> Self:
        """From a row of `queries.incident_counts` (after slice and group); None: nothing counted."""
        return cls(*map(int, counted)) if counted else cls()


@dataclass(frozen=True, slots=True)
class AlertCounts:
    alerts: int = 0
    answered: int = 0
    accepted: int = 0
    median_accept_s: float | None = None
    ran_for_nothing: int = 0

    @classmethod
    def of(cls, counted: Sequence[Any] | None) -> Self:
        """From a row of `queries.alert_counts` (after slice and group); None: nothing counted."""
        if not counted:
            return cls()
        alerts, answered, accepted, median, ran = counted
        median_s = None if median is None else float(median)
        return cls(int(alerts), int(answered), int(accepted), median_s, int(ran))


@dataclass(frozen=True, slots=True)
class DutyCounts:
    active_responders: int = 0
    on_duty_s: float = 0.0

    @classmethod
    def of(cls, counted: Sequence[Any] | None) -> Self:
        """From a row of `queries.duty_counts` (after slice and group); None: nobody on duty."""
        return cls(int(counted[0]), float(counted[1])) if counted else cls()


@dataclass(frozen=True, slots=True)
class Label:
    """How a row is named: its key and, for places, the names in both languages."""

    key: str
    name: str | None = None
    name_zh: str | None = None
    district: str | None = None
    district_zh: str | None = None


def share(part: int, whole: int, digits: int = SHARE_DIGITS) -> float | None:
    """part ÷ whole, or None when there is no whole (an empty share is unknown, not zero)."""
    return None if whole == 0 else round(part / whole, digits)


def row(label: Label, incidents: IncidentCounts, alerts: AlertCounts, duty: DutyCounts) -> ProgrammeRow:
    median = alerts.median_accept_s
    return ProgrammeRow(
        key=label.key,
        name=label.name,
        name_zh=label.name_zh,
        district=label.district,
        district_zh=label.district_zh,
        incidents=incidents.incidents,
        responder_5min=share(incidents.responder_5min, incidents.incidents),
        aed_5min=share(incidents.aed_5min, incidents.incidents),
        alerts=alerts.alerts,
        answered=alerts.answered,
        accepted=alerts.accepted,
        acceptance_rate=share(alerts.accepted, alerts.answered),
        median_accept_s=None if median is None else round(median, SECONDS_DIGITS),
        alerts_per_incident=share(alerts.alerts, incidents.incidents, 2),
        ran_for_nothing=alerts.ran_for_nothing,
        active_responders=duty.active_responders,
        on_duty_hours=round(duty.on_duty_s / 3600, HOURS_DIGITS),
    )


COLUMNS = tuple(ProgrammeRow.model_fields)


def to_csv(rows: Iterable[ProgrammeRow]) -> str:
    """One line per row in `COLUMNS` order (empty cell = null); the caller appends the total."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for r in rows:
        writer.writerow(["" if v is None else v for v in r.model_dump().values()])
    return out.getvalue()
