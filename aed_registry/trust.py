"""When a problem report may take an AED out of dispatch, and how often anyone may report.

Any role can report an AED missing or broken, including integrations (gateway, planner) whose
tokens are many and cheap to misuse: 50 reports from one gateway token once moved the nearest AED
from 56 m to 609 m. So a report from an untrusted role counts for dispatch only when a second,
independent reporter (another token or responder) reports the AED missing or broken within the
confirmation window; an admin's report counts at once. Reports are limited per reporter and per
AED per hour, and a reporter has at most one open report of a kind on an AED. Pure decisions here;
`service.py` applies them under a row lock on the AED.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from aed_registry.models import BLOCKING_REPORT_KINDS

TRUSTED_ROLES = frozenset({"admin"})
LIMIT_WINDOW = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Reporter:
    """Who files a report: `actor` for the history, `identity` to tell reporters apart."""

    actor: str  # "<role>:<token label>"
    identity: str  # "responder:<id>", "token:<id>" or "admin:env" (the start-up admin token)
    trusted: bool


@dataclass(frozen=True, slots=True)
class OpenReport:
    """An open report of a blocking kind, as the confirmation rule needs it."""

    id: str
    reporter: str | None
    created_at: datetime
    confirmed: bool


def availability_state(status: str, confirmed_blocking_kind: str | None) -> str:
    """What dispatch makes of an AED: `available`, its non-active status, or `reported_<kind>`."""
    if status != "active":
        return status
    if confirmed_blocking_kind is not None:
        return f"reported_{confirmed_blocking_kind}"
    return "available"


def confirming_reports(
    reporter: Reporter, kind: str, open_blocking: Sequence[OpenReport], now: datetime, window: timedelta
) -> list[OpenReport] | None:
    """None when a new `kind` report by `reporter` does not count yet; else the earlier reports it
    confirms (possibly none: a trusted reporter's report counts by itself)."""
    if kind not in BLOCKING_REPORT_KINDS:
        return None
    others = [r for r in open_blocking if r.reporter != reporter.identity and now - r.created_at <= window]
    if not reporter.trusted and not others:
        return None
    return [r for r in others if not r.confirmed]


def seconds_until_allowed(times: Sequence[datetime], limit: int, now: datetime) -> int | None:
    """None while fewer than `limit` of `times` fall in the last hour; else the seconds until the
    oldest of them leaves it (for `Retry-After`)."""
    recent = sorted(t for t in times if now - t < LIMIT_WINDOW)
    if len(recent) < limit:
        return None
    return max(1, math.ceil((recent[-limit] + LIMIT_WINDOW - now).total_seconds()))
