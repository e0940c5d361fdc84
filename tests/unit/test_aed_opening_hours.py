"""Opening hours as real AED registries write them, evaluated at local wall-clock times."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from aed_registry.opening_hours import (
    OpeningHoursError,
    compile_cached,
    is_open,
    open_at,
    parse_opening_hours,
)

# 2026-11-23 is a Monday; 2026-10-01 (a Thursday) is National Day.
MON, TUE, FRI, SAT, SUN = (date(2026, 11, d) for d in (23, 24, 27, 28, 29))
NATIONAL_DAY = date(2026, 10, 1)
HOLIDAYS = frozenset({NATIONAL_DAY})


def at(day: date, hhmm: str) -> datetime:
    h, m = (int(x) for x in hhmm.split(":"))
    return datetime(day.year, day.month, day.day, h, m)


def check(text: str, day: date, hhmm: str) -> bool:
    return is_open(parse_opening_hours(text), at(day, hhmm), HOLIDAYS)


@pytest.mark.parametrize("text", ["24/7", " 24/7 ", "24小时", "全天", "Mo-Su 00:00-24:00", "00:00-24:00"])
def test_always_open_forms(text: str) -> None:
    for day in (MON, SAT, SUN, NATIONAL_DAY):
        for hhmm in ("00:00", "03:00", "12:30", "23:59"):
            assert check(text, day, hhmm), (text, day, hhmm)


def test_weekday_range_and_separate_saturday() -> None:
    text = "Mo-Fr 08:00-18:00; Sa 09:00-12:00"
    assert check(text, MON, "08:00")
    assert not check(text, MON, "07:59")
    assert not check(text, MON, "18:00")  # the end is exclusive
    assert check(text, FRI, "17:59")
    assert check(text, SAT, "11:30")
    assert not check(text, SAT, "12:30")
    assert not check(text, SUN, "10:00")


def test_several_ranges_a_day() -> None:
    text = "Mo-Fr 08:00-12:00,14:00-18:00"
    assert check(text, TUE, "09:00")
    assert not check(text, TUE, "13:00")
    assert check(text, TUE, "15:00")


def test_range_past_midnight_belongs_to_the_day_it_starts() -> None:
    text = "Fr-Sa 22:00-02:00"
    assert check(text, FRI, "23:00")
    assert check(text, SAT, "01:30")  # Friday night
    assert check(text, SUN, "01:30")  # Saturday night
    assert not check(text, MON, "01:30")  # Sunday night is not in the rule
    assert not check(text, FRI, "01:30")  # Thursday night is not either
    assert not check(text, SAT, "02:00")


def test_extended_hours_beyond_24() -> None:
    assert check("Mo 18:00-26:00", TUE, "01:59")
    assert not check("Mo 18:00-26:00", TUE, "02:00")


def test_weekday_wrap_sa_mo() -> None:
    text = "Sa-Mo 10:00-16:00"
    assert check(text, SAT, "10:00")
    assert check(text, SUN, "12:00")
    assert check(text, MON, "15:59")
    assert not check(text, TUE, "12:00")
    assert not check(text, FRI, "12:00")


def test_weekday_lists() -> None:
    text = "Mo,We,Fr 09:00-17:00"
    assert check(text, MON, "10:00")
    assert not check(text, TUE, "10:00")
    assert check(text, FRI, "10:00")


def test_off_and_closed_override_earlier_rules() -> None:
    text = "Mo-Su 08:00-20:00; Su off"
    assert check(text, SAT, "10:00")
    assert not check(text, SUN, "10:00")
    assert not check("Mo-Su 08:00-20:00; Sa,Su closed", SAT, "10:00")
    assert not check("off", MON, "10:00")


def test_public_holiday_off() -> None:
    text = "Mo-Fr 08:00-18:00; PH off"
    assert not check(text, NATIONAL_DAY, "10:00")
    assert check(text, date(2026, 10, 8), "10:00")  # the Thursday after: a working day
    # Without a PH rule, a holiday is just its weekday.
    assert check("Mo-Fr 08:00-18:00", NATIONAL_DAY, "10:00")


def test_public_holiday_own_hours_and_combined_selector() -> None:
    text = "Mo-Fr 08:00-18:00; PH 10:00-14:00"
    assert not check(text, NATIONAL_DAY, "09:00")
    assert check(text, NATIONAL_DAY, "13:00")
    assert check("Sa,PH 09:00-12:00", NATIONAL_DAY, "10:00")
    assert not check("Sa,PH 09:00-12:00", date(2026, 10, 8), "10:00")


def test_later_rules_win_order_matters() -> None:
    assert check("PH off; Mo-Fr 08:00-18:00", NATIONAL_DAY, "10:00")


def test_additional_rule_adds_instead_of_replacing() -> None:
    text = "Mo-Fr 08:00-12:00, Fr 14:00-16:00"
    assert check(text, FRI, "09:00")
    assert check(text, FRI, "15:00")
    assert not check(text, MON, "15:00")


def test_bare_day_selector_means_whole_day_and_case_is_forgiven() -> None:
    assert check("Sa-Su", SUN, "03:00")
    assert not check("Sa-Su", MON, "03:00")
    assert check("mo-fr 08:00-18:00", MON, "12:00")
    assert check("Mo-Fr 08：00～18：00", MON, "12:00")  # full-width punctuation from Chinese sources


def test_holidays_come_from_the_caller() -> None:
    hours = parse_opening_hours("Mo-Su 08:00-18:00; PH off")
    assert is_open(hours, at(MON, "10:00"), frozenset())
    assert not is_open(hours, at(MON, "10:00"), frozenset({MON}))


@pytest.mark.parametrize(
    "text",
    ["", "   ", "sunrise-sunset", "Jan-Mar Mo 10:00-12:00", "Mo-Fr 08:00", "Mo-Fr 25:00-26:00",
     "Mo-Fr 08:61-09:00", 'Mo 10:00-12:00 "call first"', "Mo-Fr 08:00-18:00 || PH off",
     "Mo-Fr 10:00-09:00:00", "open on request", "Mo-Fr 08:00-18:00 Sa", "Mo 10:00-50:00"],
)  # fmt: skip
def test_unsupported_values_raise_naming_the_problem(text: str) -> None:
    with pytest.raises(OpeningHoursError) as err:
        parse_opening_hours(text)
    assert str(err.value)


def test_unparseable_is_unknown_and_cached() -> None:
    assert open_at("by appointment", at(MON, "10:00"), HOLIDAYS) is None
    assert open_at(None, at(MON, "10:00"), HOLIDAYS) is None
    assert open_at("Mo 09:00-10:00", at(MON, "09:30"), HOLIDAYS) is True
    assert open_at("Mo 09:00-10:00", at(MON, "10:30"), HOLIDAYS) is False
    assert compile_cached("Mo 09:00-10:00") is compile_cached("Mo 09:00-10:00")
