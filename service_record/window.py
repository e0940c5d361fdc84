"""The window a service record or export covers, read the way a programme office reads a month:
on the city's clock. Pure: the caller passes the time zone and `now`. Windows are kept in UTC, so
their arithmetic is never a wall clock's.

Without `from` a report starts at the beginning of the current month in the city; without `to` it
ends now. A time without a zone is the city's local time. A window longer than `MAX_WINDOW` (a
year and a month: a year's export with the month before it) is refused, so an export stays a size
another system can take in one go.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from service_record.tally import Window

MAX_WINDOW = timedelta(days=400)


class BadWindow(ValueError):
    """The window breaks a rule; `field` is `from` or `to`, `str()` names it and the rule."""

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}")
        self.field, self.rule = field, rule


def month_start(moment: datetime, tz: ZoneInfo) -> datetime:
    """Midnight on the first of `moment`'s month, on the city's clock."""
    local = moment.astimezone(tz)
    return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_month(start: datetime) -> datetime:
    """The first of the month after `start` (itself a first of the month, local midnight)."""
    year, month = (start.year + 1, 1) if start.month == 12 else (start.year, start.month + 1)
    return start.replace(year=year, month=month)


def _in_city(moment: datetime, tz: ZoneInfo) -> datetime:
    return moment.replace(tzinfo=tz) if moment.tzinfo is None else moment


def resolve(start: datetime | None, end: datetime | None, tz: ZoneInfo, now: datetime) -> Window:
    """The window asked for, with the defaults filled in; `BadWindow` names what is wrong: `to`
    when it was given, else `from` (measured against now)."""
    blamed = "from" if end is None else "to"
    end = now if end is None else _in_city(end, tz)
    start = month_start(now, tz) if start is None else _in_city(start, tz)
    if end <= start:
        raise BadWindow(blamed, "from must be before to (default: now)")
    if end - start > MAX_WINDOW:
        raise BadWindow(blamed, f"to may be at most {MAX_WINDOW.days} days after from (about 13 months)")
    return Window(start.astimezone(UTC), end.astimezone(UTC))


def months(window: Window, tz: ZoneInfo) -> list[tuple[str, Window]]:
    """The calendar months ('2026-11') the window touches, each clipped to the window."""
    out: list[tuple[str, Window]] = []
    start = month_start(window.start, tz)
    while start < window.end:
        following = next_month(start)
        part = Window(max(start, window.start).astimezone(UTC), min(following, window.end).astimezone(UTC))
        out.append((f"{start.year:04d}-{start.month:02d}", part))
        start = following
    return out
