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

from core.calendar import city_months, month_start, on_city_clock
from service_record.tally import Window

MAX_WINDOW = timedelta(days=400)


class BadWindow(ValueError):
    """The window breaks a rule; `field` is `from` or `to`, `str()` names it and the rule."""

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}")
        self.field, self.rule = field, rule


def resolve(start: datetime | None, end: datetime | None, tz: ZoneInfo, now: datetime) -> Window:
    """The window asked for, with the defaults filled in; `BadWindow` names what is wrong: `to`
    when it was given, else `from` (measured against now)."""
    blamed = "from" if end is None else "to"
    end = now if end is None else on_city_clock(end, tz)
    start = month_start(now, tz) if start is None else on_city_clock(start, tz)
    if end <= start:
        raise BadWindow(blamed, "from must be before to (default: now)")
    if end - start > MAX_WINDOW:
        raise BadWindow(blamed, f"to may be at most {MAX_WINDOW.days} days after from (about 13 months)")
    return Window(start.astimezone(UTC), end.astimezone(UTC))


def months(window: Window, tz: ZoneInfo) -> list[tuple[str, Window]]:
    """The calendar months ('2026-11') the window touches, each clipped to the window."""
    return [
        (label, Window(first.astimezone(UTC), last.astimezone(UTC)))
        for label, first, last in city_months(window.start, window.end, tz)
    ]
