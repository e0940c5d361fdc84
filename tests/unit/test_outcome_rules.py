"""The outcome record's rules and the Utstein CSV, on plain data."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from debriefs.models import WENT
from debriefs.schemas import Went
from outcomes.models import WITNESSED
from outcomes.rules import CLOCK_SLACK, Problem, changed_fields, problems
from outcomes.schemas import FACTS, OutcomeIn, Witnessed
from outcomes.utstein import HEADER, IncidentFacts, to_csv

OPENED = datetime(2026, 11, 29, 23, 50, tzinfo=UTC)  # 07:50 the next day in Shenzhen
NOW = OPENED + timedelta(hours=2)
CITY = ZoneInfo("Asia/Shanghai")


def test_the_enums_are_the_tables_checks() -> None:
    assert tuple(Witnessed) == WITNESSED and tuple(Went) == WENT
    assert set(FACTS) == set(OutcomeIn.model_fields)


def test_a_consistent_record_passes_and_null_contradicts_nothing() -> None:
    record = {
        "aed_attached": True,
        "aed_attached_at": OPENED + timedelta(minutes=4),
        "shock_delivered": True,
        "first_shock_at": OPENED + timedelta(minutes=5),
        "rosc": True,
        "survived_admission": True,
        "survived_discharge": True,
    }
    assert problems(record, OPENED, NOW) == []
    assert problems({name: None for name in FACTS}, OPENED, NOW) == []
    assert problems({"shock_delivered": True, "survived_discharge": True}, OPENED, NOW) == []


def test_each_contradiction_names_its_field() -> None:
    assert problems({"shock_delivered": True, "aed_attached": False}, OPENED, NOW) == [
        Problem("shock_delivered", "true needs aed_attached not false")
    ]
    assert problems({"first_shock_at": OPENED}, OPENED, NOW) == [
        Problem("first_shock_at", "needs shock_delivered true")
    ]
    assert problems({"aed_attached_at": OPENED}, OPENED, NOW) == [
        Problem("aed_attached_at", "needs aed_attached true")
    ]
    assert problems({"survived_discharge": True, "survived_admission": False}, OPENED, NOW) == [
        Problem("survived_discharge", "true needs survived_admission not false")
    ]


def test_times_between_opening_and_now_with_slack_for_clocks() -> None:
    late = {"ems_arrival_at": NOW + CLOCK_SLACK + timedelta(seconds=1)}
    assert problems(late, OPENED, NOW) == [Problem("ems_arrival_at", "must not be in the future")]
    assert problems({"ems_arrival_at": NOW + CLOCK_SLACK}, OPENED, NOW) == []
    [early] = problems({"first_responder_cpr_at": OPENED - timedelta(seconds=1)}, OPENED, NOW)
    assert early.field == "first_responder_cpr_at" and early.rule.startswith("must not be before")


@given(st.dictionaries(st.sampled_from(FACTS), st.one_of(st.none(), st.booleans(), st.integers())))
def test_changed_fields_are_exactly_those_that_differ(after: dict[str, object]) -> None:
    before = {name: None for name in FACTS}
    assert set(changed_fields(before, after)) == {k for k, v in after.items() if v is not None}
    assert changed_fields(after, after) == []


def test_the_csv_row_in_the_city_clock_with_intervals_in_seconds() -> None:
    facts = IncidentFacts(
        incident_id=uuid.UUID(int=1),
        category="cardiac_arrest",
        place="residential",
        opened_at=OPENED,
        outcome_recorded=True,
        witnessed="ems",
        bystander_cpr=False,
        ems_arrival_at=OPENED + timedelta(seconds=612.4),
        rosc=None,
        responder_at=OPENED + timedelta(seconds=241),
    )
    text = to_csv([facts, IncidentFacts(uuid.UUID(int=2), "choking", "public", OPENED)], CITY)
    assert text.count("\r\n") == 3
    [row, bare] = list(csv.DictReader(io.StringIO(text)))
    assert tuple(row) == HEADER
    assert row["Date of arrest"] == "2026-11-30"  # the city's date, not UTC's
    assert row["Time of call received"] == "2026-11-30T07:50:00+08:00"
    assert row["Location of arrest"] == "Home/residence" and row["Witnessed status"] == "EMS witnessed"
    assert (row["Bystander CPR"], row["Any ROSC"]) == ("No", "Unknown")
    assert row["Call to EMS arrival (s)"] == "612" and row["Call to responder at patient (s)"] == "241"
    assert row["Call to AED at patient (s)"] == "" and row["Time AED at patient"] == ""
    assert bare["Outcome recorded"] == "No" and bare["Witnessed status"] == "Unknown"
