"""The city's calendar, for reports read the way a programme office reads a month (pure).

A naive time is the city's local time; a month is the city's calendar month, not UTC's. The
service record's export and the programme report cut their windows with these same functions.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo


def on_city_clock(at: datetime, zone: ZoneInfo) -> datetime:
    """An aware time; a naive one is read on the city's clock."""
    return at if at.tzinfo is not None else at.replace(tzinfo=zone)


def month_start(at: datetime, zone: ZoneInfo) -> datetime:
    """Midnight on the first of `at`'s month, on the city's clock."""
    local = at.astimezone(zone)
    return datetime(local.year, local.month, 1, tzinfo=zone)


def city_months(start: datetime, end: datetime, zone: ZoneInfo) -> list[tuple[str, datetime, datetime]]:
    """('YYYY-MM', from, to) for each of the city's calendar months overlapping [start, end), each
    clipped to the window."""
    first = month_start(start, zone)
    out: list[tuple[str, datetime, datetime]] = []
    while first < end:
        following = datetime(first.year + first.month // 12, first.month % 12 + 1, 1, tzinfo=zone)
        out.append((f"{first.year:04d}-{first.month:02d}", max(first, start), min(following, end)))
        first = following
    return out
