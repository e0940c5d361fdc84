"""The service record as plain arithmetic: time on duty, incidents attended, time on incidents and
points of one responder in one window of time. No database, no clock: the caller passes `now`.

Definitions shared by every report of issue 22:
- an incident is *attended* when the responder accepted its alert (`answered_at` set and the
  status went through `accepted`), whether or not they later arrived or were stood down; it counts
  in the window holding its `answered_at`, and so does its arrival (`on_scene_at`) for points;
- the *engagement time* of an accepted alert runs from `answered_at` to when it ended (the alert's
  cancellation: the incident closed or the responder stood down; else the incident's closing; else
  now, still going), capped at `ENGAGEMENT_CAP`;
- a duty stretch (`duty_sessions` row) still open counts up to now.

Durations are kept as `timedelta` (whole microseconds), so the tallies of windows that split a
window add up exactly to the tally of the whole: a month's export rows sum to the year's figure.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

ENGAGEMENT_CAP = timedelta(hours=2)
ZERO = timedelta(0)
HOUR_S = 3600.0


@dataclass(frozen=True, slots=True)
class Window:
    """[start, end): what a report covers."""

    start: datetime
    end: datetime

    def overlap(self, start: datetime, end: datetime) -> timedelta:
        """How much of [start, end) lies in the window (never negative)."""
        return max(ZERO, min(end, self.end) - max(start, self.start))

    def holds(self, moment: datetime) -> bool:
        return self.start <= moment < self.end


class DutyStretch(NamedTuple):
    """One stretch on duty; `ended_at` None while the responder is still on duty. (Tuples: an
    export builds hundreds of thousands, at a third of a frozen dataclass's cost.)"""

    started_at: datetime
    ended_at: datetime | None


class Turnout(NamedTuple):
    """An accepted alert: when it was accepted, when it ended (None: still going), when the
    responder reached the patient (None: never)."""

    answered_at: datetime
    ended_at: datetime | None
    on_scene_at: datetime | None

    def engaged_until(self, now: datetime) -> datetime:
        """The end of the engagement: the alert's end, or now, capped two hours after the accept."""
        end = self.ended_at if self.ended_at is not None else now
        return max(self.answered_at, min(end, self.answered_at + ENGAGEMENT_CAP))


@dataclass(frozen=True, slots=True)
class PointsRule:
    """The programme's rule for service points (settings `points_per_*`)."""

    per_duty_hour: float
    per_incident: float
    per_arrival: float

    def named(self) -> dict[str, float]:
        """The rule under its settings' names, as reports state it next to the points."""
        return {
            "points_per_duty_hour": self.per_duty_hour,
            "points_per_incident": self.per_incident,
            "points_per_arrival": self.per_arrival,
        }


@dataclass(frozen=True, slots=True)
class ServiceTally:
    """What a responder (or a team: tallies add up) did in a window."""

    on_duty: timedelta = ZERO
    incidents_attended: int = 0
    incident_time: timedelta = ZERO
    arrivals: int = 0

    def __add__(self, other: ServiceTally) -> ServiceTally:
        return ServiceTally(
            self.on_duty + other.on_duty,
            self.incidents_attended + other.incidents_attended,
            self.incident_time + other.incident_time,
            self.arrivals + other.arrivals,
        )

    @property
    def empty(self) -> bool:
        return self == ServiceTally()

    def points(self, rule: PointsRule) -> float:
        """Hours on duty, incidents attended and arrivals, each at the rule's rate."""
        return (
            self.on_duty.total_seconds() / HOUR_S * rule.per_duty_hour
            + self.incidents_attended * rule.per_incident
            + self.arrivals * rule.per_arrival
        )


def time_on_duty(stretches: Iterable[DutyStretch], window: Window, now: datetime) -> timedelta:
    """The stretches clipped to the window, an open one counted up to now."""
    total = ZERO
    for stretch in stretches:
        end = stretch.ended_at if stretch.ended_at is not None else now
        total += window.overlap(stretch.started_at, end)
    return total


def time_on_incidents(turnouts: Iterable[Turnout], window: Window, now: datetime) -> timedelta:
    """Engagement time of every accepted alert, clipped to the window (an accept just before the
    window still counts the part of the run inside it)."""
    return sum((window.overlap(t.answered_at, t.engaged_until(now)) for t in turnouts), ZERO)


def tally(
    stretches: Iterable[DutyStretch], turnouts: Iterable[Turnout], window: Window, now: datetime
) -> ServiceTally:
    """One responder's service in the window."""
    turnouts = list(turnouts)
    accepted_here = [t for t in turnouts if window.holds(t.answered_at)]
    return ServiceTally(
        on_duty=time_on_duty(stretches, window, now),
        incidents_attended=len(accepted_here),
        incident_time=time_on_incidents(turnouts, window, now),
        arrivals=sum(1 for t in accepted_here if t.on_scene_at is not None),
    )
