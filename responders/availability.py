"""Who may be dispatched, as pure functions on plain data.

A responder is dispatchable at a moment when they are active, on duty, hold a certificate valid at
that moment (of a kind that qualifies for the incident), and their last position is fresh. The
same rules run in three places — the registry's `GET /v1/responders/{id}`, the live store's Lua
scripts (through the compact certificate string below) and the matching query — so they live here
once.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

# Reasons, in the order a dispatcher would fix them.
INACTIVE = "inactive"
OFF_DUTY = "off_duty"
NO_VALID_CERTIFICATE = "no_valid_certificate"
POSITION_STALE = "position_stale"


@dataclass(frozen=True, slots=True)
class CertificatePeriod:
    """When one certificate counts, as epoch seconds: [valid_from, valid_until)."""

    kind: str
    valid_from_s: int
    valid_until_s: int

    def valid_at(self, at_s: float) -> bool:
        return self.valid_from_s <= at_s < self.valid_until_s


def certificate_period(kind: str, valid_from: date, valid_until: date, tz: ZoneInfo) -> CertificatePeriod:
    """Dates are local to the city: valid from the start of `valid_from` to the end of `valid_until`."""
    start = datetime.combine(valid_from, time(0), tz)
    end = datetime.combine(valid_until + timedelta(days=1), time(0), tz)
    return CertificatePeriod(kind, int(start.timestamp()), int(end.timestamp()))


def encode_certificates(periods: Iterable[CertificatePeriod]) -> str:
    """Compact form kept in Redis beside the live position: 'cpr:1692115200:1786809600;aed:…'."""
    return ";".join(f"{p.kind}:{p.valid_from_s}:{p.valid_until_s}" for p in periods)


def decode_certificates(text: str) -> list[CertificatePeriod]:
    periods = []
    for part in filter(None, text.split(";")):
        kind, start, end = part.split(":")
        periods.append(CertificatePeriod(kind, int(start), int(end)))
    return periods


def qualified_at(periods: Iterable[CertificatePeriod], at_s: float, kinds: Collection[str] | None) -> bool:
    """A certificate of one of `kinds` (None: any kind) is valid at `at_s`."""
    return any(p.valid_at(at_s) and (kinds is None or p.kind in kinds) for p in periods)


def not_dispatchable_because(
    *,
    active: bool,
    on_duty: bool,
    certificates: Iterable[CertificatePeriod],
    position_ts: float | None,
    at_s: float,
    staleness_s: float,
) -> list[str]:
    """Every reason the responder cannot be alerted now; empty means dispatchable."""
    reasons = []
    if not active:
        reasons.append(INACTIVE)
    if not on_duty:
        reasons.append(OFF_DUTY)
    if not qualified_at(certificates, at_s, None):
        reasons.append(NO_VALID_CERTIFICATE)
    if on_duty and (position_ts is None or at_s - position_ts > staleness_s):
        reasons.append(POSITION_STALE)
    return reasons
