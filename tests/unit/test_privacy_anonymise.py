"""Taking one person out of the feedback kept for emergency centres: their name and phone only."""

from __future__ import annotations

from privacy.anonymise import without_person

ME, OTHER = "6a1f0c1e-0000-4000-8000-000000000001", "6a1f0c1e-0000-4000-8000-000000000002"


def test_their_name_and_phone_go_at_any_depth_and_nothing_else_changes() -> None:
    answered = {
        "accepted": 2,
        "responders": [
            {"responder_id": ME, "name": "Wang Fang", "phone": "13900139000", "role": "cpr", "eta_s": 80.0},
            {"responder_id": OTHER, "name": "Li Wei", "phone": "13800138000", "role": "fetch_aed"},
        ],
    }
    assert without_person(answered, ME) == {
        "accepted": 2,
        "responders": [
            {"responder_id": ME, "name": None, "phone": None, "role": "cpr", "eta_s": 80.0},
            {"responder_id": OTHER, "name": "Li Wei", "phone": "13800138000", "role": "fetch_aed"},
        ],
    }
    fetched = {
        "responder": {"responder_id": ME, "name": "Wang Fang"},
        "aed": {"aed_id": "a1", "name": "Metro"},
    }
    assert without_person(fetched, ME) == {
        "responder": {"responder_id": ME, "name": None},
        "aed": {"aed_id": "a1", "name": "Metro"},  # an AED's name is not a person's
    }
    tally = {"responders": {ME: {"responder_id": ME, "name": "Wang Fang", "phone": None}}, "alerted": 3}
    assert without_person(tally, ME)["responders"][ME] == {"responder_id": ME, "name": None, "phone": None}
    assert without_person(answered, "someone else") == answered
    assert without_person([1, "x", None], ME) == [1, "x", None]
