"""The trust rule for AED problem reports, on plain data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aed_registry.trust import (
    OpenReport,
    Reporter,
    availability_state,
    confirming_reports,
    seconds_until_allowed,
)

NOW = datetime(2026, 11, 29, 12, tzinfo=UTC)
DAY = timedelta(days=1)
GATEWAY = Reporter("gateway:gw", "token:a", trusted=False)
PLANNER = Reporter("planner:p", "token:b", trusted=False)
ADMIN = Reporter("admin:root", "token:c", trusted=True)


def pending(reporter: Reporter, age: timedelta = timedelta(minutes=5)) -> OpenReport:
    return OpenReport("r-" + reporter.identity, reporter.identity, NOW - age, confirmed=False)


def test_one_reporter_alone_never_counts_however_often() -> None:
    assert confirming_reports(GATEWAY, "missing", [], NOW, DAY) is None
    assert confirming_reports(GATEWAY, "missing", [pending(GATEWAY)] * 50, NOW, DAY) is None


def test_a_second_reporter_confirms_within_the_window_only() -> None:
    assert confirming_reports(PLANNER, "broken", [pending(GATEWAY)], NOW, DAY) == [pending(GATEWAY)]
    assert confirming_reports(PLANNER, "broken", [pending(GATEWAY, 2 * DAY)], NOW, DAY) is None


def test_an_admin_counts_alone_and_non_blocking_kinds_never_count() -> None:
    assert confirming_reports(ADMIN, "missing", [], NOW, DAY) == []
    assert confirming_reports(ADMIN, "locked", [], NOW, DAY) is None
    assert confirming_reports(PLANNER, "locked", [pending(GATEWAY)], NOW, DAY) is None


def test_availability_state_and_hourly_limits() -> None:
    assert availability_state("active", None) == "available"
    assert availability_state("active", "missing") == "reported_missing"
    assert availability_state("removed", "missing") == "removed"
    times = [NOW - timedelta(minutes=m) for m in (50, 30, 10)]
    assert seconds_until_allowed(times, 4, NOW) is None
    assert seconds_until_allowed(times, 3, NOW) == 600  # the report of 50 minutes ago leaves in 10
    assert seconds_until_allowed([NOW - timedelta(hours=2)] * 9, 3, NOW) is None
