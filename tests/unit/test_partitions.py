"""Month arithmetic of the partitions: UTC months, year ends, and the bounds each month gets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from core.partitions import ALERTS, EVENTS, add_months, create_month_sql, month_of, months_between

SHANGHAI = timezone(timedelta(hours=8))


def test_a_month_is_a_utc_calendar_month() -> None:
    # 1 December 06:00 in Shanghai is still 30 November in UTC
    assert month_of(datetime(2026, 12, 1, 6, 0, tzinfo=SHANGHAI)) == datetime(2026, 11, 1, tzinfo=UTC)
    assert month_of(datetime(2026, 12, 1, 8, 0, tzinfo=SHANGHAI)) == datetime(2026, 12, 1, tzinfo=UTC)


def test_months_roll_over_year_ends_both_ways() -> None:
    december = datetime(2026, 12, 1, tzinfo=UTC)
    assert add_months(december, 1) == datetime(2027, 1, 1, tzinfo=UTC)
    assert add_months(december, 14) == datetime(2028, 2, 1, tzinfo=UTC)
    assert add_months(datetime(2027, 1, 1, tzinfo=UTC), -1) == december


def test_months_between_covers_both_ends() -> None:
    months = months_between(datetime(2026, 11, 30, 23, tzinfo=UTC), datetime(2027, 2, 1, tzinfo=UTC))
    assert [(m.year, m.month) for m in months] == [(2026, 11), (2026, 12), (2027, 1), (2027, 2)]
    assert months_between(datetime(2027, 2, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)) == []


def test_a_month_partition_runs_from_its_first_instant_to_the_next_months() -> None:
    december = datetime(2026, 12, 1, tzinfo=UTC)
    assert create_month_sql(ALERTS, december) == (
        "CREATE TABLE IF NOT EXISTS alerts_2026_12 PARTITION OF alerts"
        " FOR VALUES FROM ('2026-12-01T00:00:00+00:00') TO ('2027-01-01T00:00:00+00:00')"
    )
    assert " incident_events_2026_12 PARTITION OF incident_events " in create_month_sql(EVENTS, december)
