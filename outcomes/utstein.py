"""The Utstein report as CSV: pure rows from the facts of each closed incident.

Column names follow the core data elements of the Utstein out-of-hospital cardiac arrest template,
2014 update (Perkins GD et al., Resuscitation 2015;96:328-40 and Circulation 2015;132:1286-300), so
a registry can map the file column by column; the rows marked "(programme's own)" are this
service's times, which the template has no element for but a first-responder programme is judged
on. Every incident closed in the window is a row (its `Category` column tells cardiac arrests from
the rest): an "unconscious" call is often an arrest, and the registry decides what it counts.

| Column                            | Utstein 2014 element (core)     | From                                 |
|-----------------------------------|---------------------------------|--------------------------------------|
| Incident ID                       | (case identifier)               | incidents.id                         |
| Date of arrest                    | Date of arrest                  | incidents.created_at, city's date    |
| Location of arrest                | Location of arrest              | incidents.place: residential →       |
|                                   |                                 | "Home/residence", public → "Public"  |
| Witnessed status                  | Witnessed status                | outcome.witnessed: "Unwitnessed",    |
|                                   |                                 | "Bystander witnessed", "First        |
|                                   |                                 | responder witnessed", "EMS           |
|                                   |                                 | witnessed"                           |
| Bystander CPR                     | Bystander CPR                   | outcome.bystander_cpr                |
| First responder CPR               | Who initiated CPR (first resp.) | "Yes" when first_responder_cpr_at    |
|                                   |                                 | set, else "Unknown"                  |
| AED applied before EMS arrival    | AED applied (bystander / first  | outcome.aed_attached                 |
|                                   | responder, before EMS)          |                                      |
| Defibrillation before EMS arrival | Defibrillation delivered (PAD)  | outcome.shock_delivered              |
| Any ROSC                          | Any ROSC                        | outcome.rosc                         |
| Survived event                    | Survived event (sustained ROSC  | outcome.survived_admission           |
|                                   | to hospital admission)          |                                      |
| Survival to hospital discharge    | Survived to discharge           | outcome.survived_discharge           |
| Time of call received             | Time of emergency call          | incidents.created_at (opened here)   |
| Time of EMS arrival at patient    | Time EMS arrived (at patient)   | outcome.ems_arrival_at               |
| Time of first responder CPR       | Time CPR started                | outcome.first_responder_cpr_at       |
| Time AED applied                  | Time AED applied                | outcome.aed_attached_at              |
| Time of first defibrillation      | Time of first defibrillation    | outcome.first_shock_at               |
| Time responder at patient         | (programme's own)               | dispatch.arrival_times: responder_at |
| Time AED at patient               | (programme's own)               | dispatch.arrival_times: aed_at       |
| Call to responder at patient (s)  | (programme's own interval)      | responder_at − call received         |
| Call to AED at patient (s)        | (programme's own interval)      | aed_at − call received               |
| Call to first responder CPR (s)   | Call to CPR interval            | first_responder_cpr_at − call        |
|                                   |                                 | received                             |
| Call to first defibrillation (s)  | Call to defibrillation interval | first_shock_at − call received       |
| Call to EMS arrival (s)           | EMS response interval           | ems_arrival_at − call received       |
| Category                          | (programme's own)               | incidents.category                   |
| Outcome recorded                  | (programme's own)               | "Yes" when an outcome was recorded   |

Yes/No fields say "Unknown" when the fact is not known (null), as the template keeps "unknown"
apart from "no". Times are ISO 8601 with the city's UTC offset (2026-11-30T10:43:12+08:00);
intervals are whole seconds; an unknown time or interval is an empty cell.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

WITNESSED_WORDS = {
    "unwitnessed": "Unwitnessed",
    "bystander": "Bystander witnessed",
    "first_responder": "First responder witnessed",
    "ems": "EMS witnessed",
}
LOCATION_WORDS = {"residential": "Home/residence", "public": "Public"}


@dataclass(frozen=True, slots=True)
class IncidentFacts:
    """What the report knows of one closed incident: its record, its outcome (all None when none
    was recorded) and when help reached the patient (`dispatch.arrival_times.first_arrivals`)."""

    incident_id: uuid.UUID
    category: str
    place: str
    opened_at: datetime
    outcome_recorded: bool = False
    witnessed: str | None = None
    bystander_cpr: bool | None = None
    first_responder_cpr_at: datetime | None = None
    aed_attached: bool | None = None
    aed_attached_at: datetime | None = None
    shock_delivered: bool | None = None
    first_shock_at: datetime | None = None
    ems_arrival_at: datetime | None = None
    rosc: bool | None = None
    survived_admission: bool | None = None
    survived_discharge: bool | None = None
    responder_at: datetime | None = None
    aed_at: datetime | None = None


def yes_no(value: bool | None) -> str:
    return "Unknown" if value is None else "Yes" if value else "No"


def _after_call(f: IncidentFacts, at: datetime | None) -> str:
    return "" if at is None else str(round((at - f.opened_at).total_seconds()))


Cell = Callable[[IncidentFacts, ZoneInfo], str]


def _time(pick: Callable[[IncidentFacts], datetime | None]) -> Cell:
    def cell(f: IncidentFacts, zone: ZoneInfo) -> str:
        at = pick(f)
        return "" if at is None else at.astimezone(zone).isoformat(timespec="seconds")

    return cell


def _interval(pick: Callable[[IncidentFacts], datetime | None]) -> Cell:
    return lambda f, _: _after_call(f, pick(f))


COLUMNS: tuple[tuple[str, Cell], ...] = (
    ("Incident ID", lambda f, _: str(f.incident_id)),
    ("Date of arrest", lambda f, zone: f.opened_at.astimezone(zone).date().isoformat()),
    ("Location of arrest", lambda f, _: LOCATION_WORDS.get(f.place, f.place)),
    ("Witnessed status", lambda f, _: WITNESSED_WORDS.get(f.witnessed or "", "Unknown")),
    ("Bystander CPR", lambda f, _: yes_no(f.bystander_cpr)),
    # only its time is recorded: without one, whether our responders gave CPR is not known
    ("First responder CPR", lambda f, _: "Yes" if f.first_responder_cpr_at else "Unknown"),
    ("AED applied before EMS arrival", lambda f, _: yes_no(f.aed_attached)),
    ("Defibrillation before EMS arrival", lambda f, _: yes_no(f.shock_delivered)),
    ("Any ROSC", lambda f, _: yes_no(f.rosc)),
    ("Survived event", lambda f, _: yes_no(f.survived_admission)),
    ("Survival to hospital discharge", lambda f, _: yes_no(f.survived_discharge)),
    ("Time of call received", _time(lambda f: f.opened_at)),
    ("Time of EMS arrival at patient", _time(lambda f: f.ems_arrival_at)),
    ("Time of first responder CPR", _time(lambda f: f.first_responder_cpr_at)),
    ("Time AED applied", _time(lambda f: f.aed_attached_at)),
    ("Time of first defibrillation", _time(lambda f: f.first_shock_at)),
    ("Time responder at patient", _time(lambda f: f.responder_at)),
    ("Time AED at patient", _time(lambda f: f.aed_at)),
    ("Call to responder at patient (s)", _interval(lambda f: f.responder_at)),
    ("Call to AED at patient (s)", _interval(lambda f: f.aed_at)),
    ("Call to first responder CPR (s)", _interval(lambda f: f.first_responder_cpr_at)),
    ("Call to first defibrillation (s)", _interval(lambda f: f.first_shock_at)),
    ("Call to EMS arrival (s)", _interval(lambda f: f.ems_arrival_at)),
    ("Category", lambda f, _: f.category),
    ("Outcome recorded", lambda f, _: "Yes" if f.outcome_recorded else "No"),
)
HEADER = tuple(name for name, _ in COLUMNS)


def row(facts: IncidentFacts, zone: ZoneInfo) -> list[str]:
    """One incident's cells, in `HEADER`'s order."""
    return [cell(facts, zone) for _, cell in COLUMNS]


def to_csv(incidents: Iterable[IncidentFacts], zone: ZoneInfo) -> str:
    """The whole report: the header, then one row per incident, oldest first as given."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(HEADER)
    writer.writerows(row(f, zone) for f in incidents)
    return out.getvalue()
