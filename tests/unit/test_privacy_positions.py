"""The retention's pure parts: the cutoff, and the month windows the job walks."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from privacy.positions import retention_cutoff
from privacy.retention import month_windows

UTC_TIMES = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1), timezones=st.just(UTC)
)


def test_the_cutoff_is_the_retention_before_now() -> None:
    now = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)
    assert retention_cutoff(now, 90) == datetime(2026, 9, 1, 3, 0, tzinfo=UTC)
    assert retention_cutoff(now, 0.5) == now - timedelta(hours=12)


def test_windows_are_whole_months_up_to_the_cutoff_and_the_first_is_open_below() -> None:
    first = datetime(2026, 8, 20, 10, tzinfo=UTC)
    cutoff = datetime(2026, 10, 15, 12, tzinfo=UTC)
    assert month_windows(first, cutoff) == [
        (None, datetime(2026, 9, 1, tzinfo=UTC)),
        (datetime(2026, 9, 1, tzinfo=UTC), datetime(2026, 10, 1, tzinfo=UTC)),
        (datetime(2026, 10, 1, tzinfo=UTC), cutoff),
    ]
    assert month_windows(cutoff, first) == []  # the record begins after the cutoff: nothing is old


@given(UTC_TIMES, UTC_TIMES)
def test_windows_tile_everything_before_the_cutoff_once(first: datetime, cutoff: datetime) -> None:
    windows = month_windows(first, cutoff)
    if first >= cutoff:
        assert windows == []
        return
    assert windows[0][0] is None and windows[-1][1] == cutoff
    for (_, end), (start, _) in itertools.pairwise(windows):
        assert end == start and start.day == 1 and start.hour == 0  # a partition's bound
    assert all(start is None or start < end for start, end in windows)
