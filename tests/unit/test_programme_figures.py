"""The programme report's pure parts: the window on the city's clock and its months, and the
figures made from the counts (empty shares are null, never 0; the CSV is the JSON's rows)."""

from __future__ import annotations

import csv
import io
import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from core.calendar import on_city_clock
from programme.figures import COLUMNS, AlertCounts, DutyCounts, IncidentCounts, Label, row, share, to_csv
from programme.window import MAX_WINDOW, WHOLE, months, slices, window_problem

SHENZHEN = ZoneInfo("Asia/Shanghai")


def test_a_naive_time_is_read_on_the_city_clock() -> None:
    assert on_city_clock(datetime(2026, 11, 1), SHENZHEN) == datetime(2026, 10, 31, 16, tzinfo=UTC)
    aware = datetime(2026, 11, 1, tzinfo=UTC)
    assert on_city_clock(aware, SHENZHEN) is aware


def test_months_are_the_citys_and_clipped_to_the_window() -> None:
    start, end = datetime(2025, 12, 15, tzinfo=SHENZHEN), datetime(2026, 2, 10, 12, tzinfo=SHENZHEN)
    cut = months(start, end, SHENZHEN)
    assert [s.label for s in cut] == ["2025-12", "2026-01", "2026-02"]
    assert cut[0].start == start and cut[-1].end == end
    assert cut[1].start == datetime(2026, 1, 1, tzinfo=SHENZHEN)  # 2025-12-31 16:00 UTC
    assert all(a.end == b.start for a, b in itertools.pairwise(cut))


def test_a_utc_instant_falls_in_the_citys_month() -> None:
    """23:30 UTC on 31 October is 07:30 on 1 November in Shenzhen: November's."""
    start = datetime(2026, 10, 31, 23, 30, tzinfo=UTC)
    assert [s.label for s in months(start, start + timedelta(hours=1), SHENZHEN)] == ["2026-11"]


@given(
    st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1)),
    st.timedeltas(min_value=timedelta(minutes=1), max_value=MAX_WINDOW),
)
def test_the_months_tile_the_window_exactly(start: datetime, length: timedelta) -> None:
    begin = start.replace(tzinfo=SHENZHEN)
    cut = slices(begin, begin + length, SHENZHEN, by_month=True)
    assert cut[0].start == begin and cut[-1].end == begin + length
    assert all(a.end == b.start and a.start < a.end for a, b in itertools.pairwise(cut))
    assert len({s.label for s in cut}) == len(cut)


def test_one_slice_when_not_by_month() -> None:
    start, end = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC)
    assert [(s.label, s.start, s.end) for s in slices(start, end, SHENZHEN, by_month=False)] == [
        (WHOLE, start, end)
    ]


def test_window_problems_name_to() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert window_problem(start, start) == ("to", "must be after from")
    assert window_problem(start, start - timedelta(days=1)) == ("to", "must be after from")
    assert window_problem(start, start + MAX_WINDOW + timedelta(seconds=1))[0] == "to"  # type: ignore[index]
    assert window_problem(start, start + MAX_WINDOW) is None
    assert window_problem(datetime(1969, 12, 31, tzinfo=UTC), start)[0] == "from"  # type: ignore[index]
    late = datetime(9000, 1, 2, tzinfo=UTC)
    assert window_problem(late - timedelta(days=3), late)[0] == "to"  # type: ignore[index]


def test_an_empty_share_is_null_and_a_zero_share_is_zero() -> None:
    assert share(0, 0) is None
    assert share(0, 3) == 0.0
    assert share(1, 3) == 0.3333
    empty = row(Label("West"), IncidentCounts(), AlertCounts(), DutyCounts())
    assert (
        empty.responder_5min is None and empty.acceptance_rate is None and empty.alerts_per_incident is None
    )
    assert empty.incidents == 0 and empty.on_duty_hours == 0.0


def test_a_row_rounds_once() -> None:
    r = row(
        Label("West/North", "North", "北街道", "West", "西区"),
        IncidentCounts(incidents=3, responder_5min=2, aed_5min=0),
        AlertCounts(alerts=7, answered=4, accepted=3, median_accept_s=45.04, ran_for_nothing=1),
        DutyCounts(active_responders=6, on_duty_s=51 * 3600 + 17),
    )
    assert (r.responder_5min, r.aed_5min, r.acceptance_rate) == (0.6667, 0.0, 0.75)
    assert (r.median_accept_s, r.alerts_per_incident, r.on_duty_hours) == (45.0, 2.33, 51.0)
    assert (r.name_zh, r.district_zh) == ("北街道", "西区")


def test_the_csv_writes_null_as_an_empty_cell() -> None:
    rows = [
        row(
            Label("West", "West", "西区"),
            IncidentCounts(2, 1, 0),
            AlertCounts(4, 3, 2, 30.0, 0),
            DutyCounts(1, 3600),
        ),
        row(Label("outside"), IncidentCounts(), AlertCounts(), DutyCounts()),
    ]
    lines = list(csv.reader(io.StringIO(to_csv(rows))))
    assert tuple(lines[0]) == COLUMNS
    assert lines[1][COLUMNS.index("name_zh")] == "西区" and lines[1][COLUMNS.index("responder_5min")] == "0.5"
    assert lines[2][COLUMNS.index("responder_5min")] == "" and lines[2][COLUMNS.index("incidents")] == "0"
