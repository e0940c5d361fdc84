"""The pure parts of the feedback to centres: what a transaction's incident events become, the URL
rules of a subscription, the backoff of a delivery."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cad.delivery import DeliveryPolicy
from cad.feedback import Happened, Person, aeds_named, people_named, translate
from cad.subscriptions import url_problem

T0 = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
LI, WANG, ZHAO = "r-li", "r-wang", "r-zhao"
PEOPLE = {LI: Person("Li Wei", "+8613800138000"), WANG: Person("Wang Fang", None)}
AEDS = {"aed-1": "Library lobby"}


def ev(kind: str, s: float, **data: Any) -> Happened:
    return Happened(kind, T0 + timedelta(seconds=s), data)


def test_an_opening_is_one_alerted_with_the_count_and_other_kinds_are_not_reported() -> None:
    opening = [
        ev("opened", 0, category="cardiac_arrest"),
        *(ev("alert_sent", 0, responder_id=r) for r in "abc"),
    ]
    opening.append(ev("attempt", 0.1, channel="socket"))
    out, tally = translate(opening, {}, PEOPLE, AEDS)
    assert [(f.event, f.at, f.fields) for f in out] == [("alerted", T0, {"alerted": 3})]
    more, tally = translate([ev("alert_sent", 30, responder_id="d")], tally, PEOPLE, AEDS)
    assert [(f.event, f.fields) for f in more] == [("alerted", {"alerted": 4})]  # the running total
    assert translate([ev("escalation_stopped", 40)], tally, PEOPLE, AEDS)[0] == []


def test_receipts_count_up_against_the_alerted() -> None:
    _, tally = translate([ev("alert_sent", 0), ev("alert_sent", 0)], {}, PEOPLE, AEDS)
    out, tally = translate([ev("delivered", 2, responder_id=LI, delivered_via="socket")], tally, PEOPLE, AEDS)
    assert [(f.event, f.fields) for f in out] == [("reached", {"reached": 1, "alerted": 2})]


def test_an_accept_is_answered_with_name_phone_role_and_eta_and_an_aed_run_is_aed_fetched() -> None:
    accept = [
        ev("accepted", 5, responder_id=LI, role="undecided"),
        ev("role_assigned", 5, responder_id=LI, role="fetch_aed", aed_id="aed-1", eta_s=140.0),
    ]
    out, tally = translate(accept, {"declined": 1}, PEOPLE, AEDS)
    assert [f.event for f in out] == ["answered", "aed_fetched"]
    line = {
        "responder_id": LI,
        "name": "Li Wei",
        "phone": "+8613800138000",
        "role": "fetch_aed",
        "eta_s": 140.0,
    }
    assert out[0].fields == {"accepted": 1, "declined": 1, "responders": [line]}
    assert out[1].fields == {
        "responder": {"responder_id": LI, "name": "Li Wei"},
        "aed": {"aed_id": "aed-1", "name": "Library lobby"},
        "eta_s": 140.0,
    }
    # the role may be decided in a later transaction: it completes the line for the next answer
    _, tally = translate([ev("accepted", 6, responder_id=WANG, role="undecided")], tally, PEOPLE, AEDS)
    _, tally = translate(
        [ev("role_assigned", 6, responder_id=WANG, role="cpr", eta_s=90.0)], tally, PEOPLE, AEDS
    )
    out, tally = translate([ev("declined", 9, responder_id=ZHAO)], tally, PEOPLE, AEDS)
    assert out[0].fields["accepted"] == 2 and out[0].fields["declined"] == 2
    assert [(p["name"], p["role"], p["eta_s"]) for p in out[0].fields["responders"]] == [
        ("Li Wei", "fetch_aed", 140.0),
        ("Wang Fang", "cpr", 90.0),
    ]


def test_stand_downs_fold_and_the_rest_keep_their_order_and_times() -> None:
    happened = [
        ev("stood_down", 10, responder_id="x"),
        ev("escalation_stopped", 10),
        ev("stood_down", 10, responder_id="y"),
        ev("en_route", 12, responder_id=LI),
        ev("on_scene", 100, responder_id=LI),
        ev("closed", 300, reason="ems_on_scene", cancelled=2),
    ]
    out, _ = translate(happened, {}, PEOPLE, AEDS)
    assert [(f.event, (f.at - T0).seconds) for f in out] == [
        ("stood_down", 10),
        ("en_route", 12),
        ("on_scene", 100),
        ("closed", 300),
    ]
    assert out[0].fields == {"stood_down": 2, "reason": "enough_responders"}
    assert out[1].fields == {"responder": {"responder_id": LI, "name": "Li Wei"}, "source": "manual"}
    assert out[3].fields == {"reason": "ems_on_scene"}


def test_the_phone_s_own_marks_are_heard_like_taps_with_their_source() -> None:
    happened = [
        ev("en_route", 12, responder_id=LI, source="auto", lat=22.5, lng=114.0, distance_m=24.0),
        ev("aed_picked_up", 60, responder_id=LI, source="manual"),
        ev("on_scene", 100, responder_id=LI, source="auto", lat=22.5, lng=114.0, distance_m=8.0),
    ]
    out, _ = translate(happened, {}, PEOPLE, AEDS)
    assert [(f.event, (f.at - T0).seconds, f.fields["source"]) for f in out] == [
        ("en_route", 12, "auto"),
        ("aed_picked_up", 60, "manual"),
        ("on_scene", 100, "auto"),
    ]
    assert all(f.fields["responder"] == {"responder_id": LI, "name": "Li Wei"} for f in out)
    assert people_named(happened) == {LI}


def test_the_names_to_look_up_and_an_unknown_person_is_unnamed() -> None:
    happened = [
        ev("accepted", 0, responder_id=ZHAO),
        ev("role_assigned", 0, responder_id=ZHAO, aed_id="aed-9"),
    ]
    assert people_named(happened) == {ZHAO} and aeds_named(happened) == {"aed-9"}
    out, _ = translate(happened, {}, PEOPLE, AEDS)
    assert out[0].fields["responders"][0]["name"] is None and out[1].fields["aed"]["name"] is None


def test_translate_does_not_change_the_tally_it_was_given() -> None:
    before = {"accepted": 1, "responders": {LI: {"responder_id": LI}}}
    translate([ev("accepted", 0, responder_id=WANG)], before, PEOPLE, AEDS)
    assert before == {"accepted": 1, "responders": {LI: {"responder_id": LI}}}


@pytest.mark.parametrize(
    ("url", "private_ok", "problem"),
    [
        ("https://cad.example.org/feedback", False, None),
        ("http://203.0.113.7:8080/x", False, "private"),  # documentation range: not global
        ("http://8.8.8.8/x", False, None),
        ("http://127.0.0.1:9000/x", True, None),
        ("http://127.0.0.1:9000/x", False, "private"),
        ("http://[::1]/x", False, "private"),
        ("http://169.254.169.254/latest", False, "private"),
        ("http://LOCALHOST./x", False, "this machine"),
        ("gopher://cad.example.org/", True, "http:// or https://"),
        ("https://cad.example.org:99999/", False, "not a valid URL"),
        ("https://a:b@cad.example.org/", True, "user or password"),
    ],
)
def test_subscription_urls(url: str, private_ok: bool, problem: str | None) -> None:
    found = url_problem(url, private_ok)
    assert (found is None) if problem is None else (found is not None and problem in found), found


def test_backoff_doubles_up_to_the_cap() -> None:
    policy = DeliveryPolicy(backoff_s=1.0, backoff_max_s=10.0)
    assert [policy.wait_s(n) for n in range(1, 7)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
