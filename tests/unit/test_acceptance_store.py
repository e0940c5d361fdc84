"""The SQL-free parts of the acceptance store: what an answer adds to which tally, and reading back."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from responders.acceptance import Tally, estimate
from responders.acceptance_store import Answer, Belonging, history_of_rows, tally_increments

SHANGHAI = ZoneInfo("Asia/Shanghai")
ANNA, BO, LONER = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
WHO = {
    str(ANNA): Belonging("team-futian", "sanitation_worker"),
    str(BO): Belonging("team-futian", "sanitation_worker"),
    str(LONER): Belonging(None, "volunteer"),
}
NOON_LOCAL = datetime(2026, 11, 29, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai
EVENING_UTC_DAY_LOCAL = datetime(2026, 11, 29, 10, 59, tzinfo=UTC)  # 18:59 in Shanghai: still day
NIGHT_LOCAL = datetime(2026, 11, 29, 11, 0, tzinfo=UTC)  # 19:00 in Shanghai: night (07:00 in London)


def test_an_answer_counts_for_the_responder_their_team_and_their_category() -> None:
    rows = tally_increments([Answer(ANNA, "declined", NOON_LOCAL)], WHO, SHANGHAI)
    assert rows == {
        ("responder", str(ANNA), "day"): Tally(0, 1, 0),
        ("team", "team-futian", "day"): Tally(0, 1, 0),
        ("category", "sanitation_worker", "day"): Tally(0, 1, 0),
    }


def test_the_band_is_the_city_local_hour_of_the_alert_not_utc() -> None:
    day = tally_increments([Answer(LONER, "accepted", EVENING_UTC_DAY_LOCAL)], WHO, SHANGHAI)
    night = tally_increments([Answer(LONER, "accepted", NIGHT_LOCAL)], WHO, SHANGHAI)
    assert {band for *_, band in day} == {"day"}
    assert {band for *_, band in night} == {"night"}
    # the same instant in London's time zone is morning: the day band
    london = tally_increments([Answer(LONER, "accepted", NIGHT_LOCAL)], WHO, ZoneInfo("Europe/London"))
    assert {band for *_, band in london} == {"day"}


def test_answers_of_one_round_are_summed_per_row_and_a_teamless_responder_has_no_team_row() -> None:
    rows = tally_increments(
        [
            Answer(ANNA, "unanswered", NOON_LOCAL),
            Answer(BO, "unanswered", NOON_LOCAL),
            Answer(BO, "accepted", NIGHT_LOCAL),
            Answer(LONER, "unanswered", NOON_LOCAL),
        ],
        WHO,
        SHANGHAI,
    )
    assert rows[("team", "team-futian", "day")] == Tally(0, 0, 2)
    assert rows[("category", "sanitation_worker", "day")] == Tally(0, 0, 2)
    assert rows[("team", "team-futian", "night")] == Tally(1, 0, 0)
    assert rows[("category", "volunteer", "day")] == Tally(0, 0, 1)
    assert not any(level == "team" and key is None for level, key, _ in rows)
    assert sum(t.answers for (level, _, _), t in rows.items() if level == "responder") == 4


def test_a_responder_missing_from_the_registry_counts_for_themself_only() -> None:
    ghost = uuid.uuid4()
    assert tally_increments([Answer(ghost, "declined", NOON_LOCAL)], WHO, SHANGHAI) == {
        ("responder", str(ghost), "day"): Tally(0, 1, 0)
    }


def test_rows_read_back_estimate_as_the_pure_shrinkage_says() -> None:
    history = history_of_rows(
        [
            ("responder", "anna", "day", 0, 5, 0),
            ("team", "futian", "day", 2, 8, 0),
            ("category", "sanitation_worker", "day", 30, 50, 20),
            ("responder", "anna", "night", 4, 0, 0),
        ]
    )
    got = history.estimate("anna", "futian", "sanitation_worker", "day", prior=0.35, strength=10)
    want = estimate(Tally(0, 5, 0), team=Tally(2, 8, 0), category=Tally(30, 50, 20), prior=0.35, strength=10)
    assert got == pytest.approx(want)
    fresh = history.estimate("newcomer", "futian", "sanitation_worker", "day", prior=0.35, strength=10)
    assert got < fresh < 0.35  # her declines, then her team's, pull below the prior
    at_night = history.estimate("anna", "futian", "sanitation_worker", "night", prior=0.35, strength=10)
    assert at_night > 0.35  # the night band has only her acceptances
