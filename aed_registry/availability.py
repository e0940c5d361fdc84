"""Can a responder take this AED off the wall at that moment? Pure decisions on plain data.

The SQL side only knows where AEDs are and whether they are blocked (status, open missing/broken
reports); opening hours are evaluated here, in the service's time zone, against the configured
public holidays. An AED whose hours are missing or unparseable is "unknown": the operator chooses
(`Settings.aed_unknown_hours_available`) whether dispatch offers it, because a wrongly skipped AED
and a locked one both cost minutes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol
from zoneinfo import ZoneInfo

from aed_registry.opening_hours import open_at


class _AvailabilitySettings(Protocol):
    timezone: str
    aed_public_holidays: Sequence[date]
    aed_unknown_hours_available: bool


@dataclass(frozen=True, slots=True)
class AedSpot:
    """An AED as the nearest-neighbour scan returns it (already active and unblocked)."""

    id: str
    external_id: str | None
    name: str
    lat: float
    lng: float
    opening_hours: str | None
    access: str
    location_detail: str | None


@dataclass(frozen=True, slots=True)
class HoursPolicy:
    """How opening hours are read: local time zone, which days are `PH`, what unknown means."""

    tz: ZoneInfo
    holidays: frozenset[date]
    unknown_is_open: bool

    @classmethod
    def from_settings(cls, settings: _AvailabilitySettings) -> HoursPolicy:
        return cls(
            tz=ZoneInfo(settings.timezone),
            holidays=frozenset(settings.aed_public_holidays),
            unknown_is_open=settings.aed_unknown_hours_available,
        )

    def local(self, at: datetime) -> datetime:
        """Wall-clock time at the AED; a naive `at` is taken as already local."""
        return at.astimezone(self.tz) if at.tzinfo else at

    def open_state(self, opening_hours: str | None, at: datetime) -> bool | None:
        """True/False, or None when the hours are missing or unparseable."""
        return open_at(opening_hours, self.local(at), self.holidays)

    def offered(self, opening_hours: str | None, at: datetime) -> bool:
        """Whether dispatch may send someone for this AED at `at`."""
        state = self.open_state(opening_hours, at)
        return self.unknown_is_open if state is None else state


def pick_available(spots: Iterable[AedSpot], at: datetime, policy: HoursPolicy, limit: int) -> list[AedSpot]:
    """The first `limit` spots (in the given distance order) that are open at `at`."""
    out: list[AedSpot] = []
    for spot in spots:
        if policy.offered(spot.opening_hours, at):
            out.append(spot)
            if len(out) >= limit:
                break
    return out
