"""The service record's arithmetic (service_record.tally, .window): clipping to the window, open
stretches and runs counted to now, the two-hour cap, points by the rule, calendar months on the
city's clock, and additivity: the tallies of two windows that split one add up to its tally."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service_record.tally import (
    ENGAGEMENT_CAP,
    DutyStretch,
    PointsRule,
    ServiceTally,
    Turnout,
    Window,
    tally,
    time_on_duty,
    time_on_incidents,
)
from service_record.window import MAX_WINDOW, BadWindow, months, resolve

SHANGHAI = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)
NOW = T0 + timedelta(days=10)
RULE = PointsRule(per_duty_hour=1.0, per_incident=10.0, per_arrival=5.0)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_stretches_are_clipped_to_the_window_and_an_open_one_counts_to_now() -> None:
    window = Window(at(60), at(240))
    stretches = [
        DutyStretch(at(0), at(90)),  # 30 min inside
        DutyStretch(at(100), at(130)),  # 30 min, wholly inside
        DutyStretch(at(200), None),  # open: to now (minute 230), 30 min
        DutyStretch(at(300), at(400)),  # after the window
    ]
    assert time_on_duty(stretches, window, now=at(230)) == timedelta(minutes=90)
    # an open stretch never counts past the window's end
    assert time_on_duty([DutyStretch(at(200), None)], window, now=at(1000)) == timedelta(minutes=40)


def test_engagement_runs_from_the_accept_to_the_end_capped_at_two_hours() -> None:
    window = Window(at(0), at(1000))
    stood_down = Turnout(at(10), ended_at=at(25), on_scene_at=None)
    long_one = Turnout(at(100), ended_at=at(400), on_scene_at=at(104))
    going = Turnout(at(500), ended_at=None, on_scene_at=None)
    assert time_on_incidents([stood_down], window, now=at(1000)) == timedelta(minutes=15)
    assert time_on_incidents([long_one], window, now=at(1000)) == ENGAGEMENT_CAP
    assert time_on_incidents([going], window, now=at(530)) == timedelta(minutes=30)
    assert time_on_incidents([going], window, now=at(900)) == ENGAGEMENT_CAP


def test_an_accept_before_the_window_counts_its_time_inside_but_not_as_attended() -> None:
    run = Turnout(at(50), ended_at=at(80), on_scene_at=at(55))
    before, inside = Window(at(0), at(60)), Window(at(60), at(120))
    assert tally([], [run], inside, NOW) == ServiceTally(incident_time=timedelta(minutes=20))
    assert tally([], [run], before, NOW) == ServiceTally(
        incidents_attended=1, incident_time=timedelta(minutes=10), arrivals=1
    )


def test_points_follow_the_rule() -> None:
    record = ServiceTally(on_duty=timedelta(hours=7, minutes=30), incidents_attended=3, arrivals=2)
    assert record.points(RULE) == pytest.approx(7.5 + 30 + 10)
    assert record.points(PointsRule(0, 0, 100)) == 200
    assert ServiceTally().empty and not record.empty


moments = st.integers(min_value=0, max_value=20_000).map(lambda m: at(m / 2))


@st.composite
def stretches(draw: st.DrawFn) -> list[DutyStretch]:
    out = []
    for start in draw(st.lists(moments, max_size=6)):
        length = draw(st.none() | st.integers(min_value=0, max_value=3000))
        out.append(DutyStretch(start, None if length is None else start + timedelta(minutes=length)))
    return out


@st.composite
def turnouts(draw: st.DrawFn) -> list[Turnout]:
    out = []
    for answered in draw(st.lists(moments, max_size=6)):
        length = draw(st.none() | st.integers(min_value=0, max_value=300))
        arrived = draw(st.booleans())
        ended = None if length is None else answered + timedelta(minutes=length)
        out.append(Turnout(answered, ended, answered + timedelta(minutes=3) if arrived else None))
    return out


@given(stretches(), turnouts(), moments, moments, moments, st.integers(min_value=0, max_value=20_000))
def test_tallies_of_a_split_window_add_up_to_the_whole(
    duty: list[DutyStretch], runs: list[Turnout], a: datetime, b: datetime, c: datetime, now_m: int
) -> None:
    start, middle, end = sorted((a, b, c))
    now = at(now_m)
    whole = tally(duty, runs, Window(start, end), now)
    parts = tally(duty, runs, Window(start, middle), now) + tally(duty, runs, Window(middle, end), now)
    assert parts == whole
    assert parts.points(RULE) == pytest.approx(whole.points(RULE))


@given(stretches(), turnouts(), moments, moments)
def test_a_window_never_counts_more_than_its_length_per_stretch_or_run(
    duty: list[DutyStretch], runs: list[Turnout], a: datetime, b: datetime
) -> None:
    window = Window(min(a, b), max(a, b))
    length = window.end - window.start
    for stretch in duty:
        assert timedelta(0) <= time_on_duty([stretch], window, NOW) <= length
    for run in runs:
        assert timedelta(0) <= time_on_incidents([run], window, NOW) <= min(length, ENGAGEMENT_CAP)


def test_the_default_window_is_this_month_on_the_citys_clock_to_now() -> None:
    now = datetime(2026, 11, 30, 17, 0, tzinfo=UTC)  # already 1 December in Shanghai
    window = resolve(None, None, SHANGHAI, now)
    assert window == Window(datetime(2026, 11, 30, 16, 0, tzinfo=UTC), now)


def test_a_time_without_a_zone_is_the_citys() -> None:
    window = resolve(datetime(2026, 11, 1), datetime(2026, 11, 2), SHANGHAI, NOW)
    assert window.start == datetime(2026, 10, 31, 16, 0, tzinfo=UTC)
    assert window.end - window.start == timedelta(days=1)


@pytest.mark.parametrize(
    ("start", "end", "field"),
    [
        (T0, T0, "to"),
        (T0, T0 - timedelta(seconds=1), "to"),
        (T0, T0 + MAX_WINDOW + timedelta(seconds=1), "to"),
        (NOW + timedelta(seconds=1), None, "from"),  # to defaults to now
        (NOW - MAX_WINDOW - timedelta(seconds=1), None, "from"),
    ],
)
def test_bad_windows_name_the_field(start: datetime, end: datetime | None, field: str) -> None:
    with pytest.raises(BadWindow) as caught:
        resolve(start, end, SHANGHAI, NOW)
    assert caught.value.field == field and str(caught.value).startswith(f"{field}: ")


def test_months_cut_the_window_at_local_midnight_on_the_first() -> None:
    window = Window(datetime(2026, 10, 20, 0, 0, tzinfo=UTC), datetime(2027, 1, 5, 0, 0, tzinfo=UTC))
    parts = months(window, SHANGHAI)
    assert [label for label, _ in parts] == ["2026-10", "2026-11", "2026-12", "2027-01"]
    assert parts[0][1] == Window(window.start, datetime(2026, 10, 31, 16, 0, tzinfo=UTC))
    december = Window(datetime(2026, 11, 30, 16, 0, tzinfo=UTC), datetime(2026, 12, 31, 16, 0, tzinfo=UTC))
    assert parts[2][1] == december
    assert parts[-1][1].end == window.end
    assert all(a[1].end == b[1].start for a, b in pairwise(parts))
