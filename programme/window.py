"""The report's window and its slices, on the city's clock (pure).

A window is half-open, [start, end): `from=2026-11-01&to=2026-12-01` is November. A naive time (or a
bare date) is read on the city's clock, so a planner's "November" is Shenzhen's November, not UTC's.
Grouped by month, the window is cut into the city's calendar months (the first and last clipped to
the window); otherwise it is one slice. Incidents fall in the slice of their opening time, duty
sessions are clipped to each slice they overlap.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from core.calendar import city_months

MAX_WINDOW = timedelta(days=731)
"""Two years: a year beside the one before it. Longer windows are refused (422 on `to`), which keeps
every report a scan of at most 24 monthly partitions of alerts."""

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)
"""Windows outside these bounds are refused: no record is older, and a date near year 9999 has no
following month (or, with a time-zone offset, no UTC instant) to compute."""

WHOLE = "all"  # the label of the single slice of a window not grouped by month


@dataclass(frozen=True, slots=True)
class Slice:
    """A stretch of the window: `label` is 'YYYY-MM' for a month, `WHOLE` for the whole window."""

    label: str
    start: datetime
    end: datetime


def window_problem(start: datetime, end: datetime) -> tuple[str, str] | None:
    """(field, rule) when the window cannot be reported, else None."""
    if start < EARLIEST:
        return "from", f"must be at or after {EARLIEST.date()}"
    if end > LATEST:
        return "to", f"must be at or before {LATEST.date()}"
    if end <= start:
        return "to", "must be after from"
    if end - start > MAX_WINDOW:
        return "to", f"the window must be at most {MAX_WINDOW.days} days"
    return None


def months(start: datetime, end: datetime, zone: ZoneInfo) -> list[Slice]:
    """The city's calendar months overlapping [start, end), each clipped to the window."""
    return [Slice(label, first, last) for label, first, last in city_months(start, end, zone)]


def slices(start: datetime, end: datetime, zone: ZoneInfo, by_month: bool) -> list[Slice]:
    return months(start, end, zone) if by_month else [Slice(WHOLE, start, end)]
