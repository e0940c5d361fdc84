"""The dispatch policy's pure core (dispatch.policy): its sums against brute force, its decisions on
hand-made circles, and its invariants on random circles replayed answer by answer (hypothesis)."""

from __future__ import annotations

import itertools
import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatch.matching import AedSite, Candidate, people_in_reach
from dispatch.policy.chance import at_least, expected_first
from dispatch.policy.circle import (
    CircleRules,
    Fetch,
    Person,
    Sent,
    choose_role,
    enough,
    stand_down,
    taken_aeds,
    top_up,
    with_answer,
)
from geo.distance import haversine_m
from geo.reach import ReachModel

RULES = CircleRules()
chances = st.lists(st.floats(0.0, 1.0), max_size=9)


# --- the sums ----------------------------------------------------------------------------------


def brute_at_least(ps: list[float], k: int) -> float:
    total = 0.0
    for outcome in itertools.product((0, 1), repeat=len(ps)):
        if sum(outcome) >= k:
            total += math.prod(p if o else 1 - p for p, o in zip(ps, outcome, strict=True))
    return total


@given(chances, st.integers(0, 5))
def test_at_least_equals_enumeration(ps: list[float], k: int) -> None:
    assert at_least(ps, k) == pytest.approx(brute_at_least(ps, k), abs=1e-12)


def test_at_least_is_not_the_expected_count() -> None:
    # three runners at 0.35: the expected count passes 1, yet all three decline 27 % of the time
    assert at_least([0.35] * 3, 1) == pytest.approx(1 - 0.65**3)
    assert 1 - at_least([0.35] * 3, 1) == pytest.approx(0.2746, abs=1e-4)


@given(st.floats(0, 1000), st.lists(st.tuples(st.floats(0, 1000), st.floats(0, 1)), max_size=7))
def test_expected_first_equals_enumeration(fallback: float, arrivals: list[tuple[float, float]]) -> None:
    expected = 0.0
    for outcome in itertools.product((0, 1), repeat=len(arrivals)):
        weight = math.prod(p if o else 1 - p for (_, p), o in zip(arrivals, outcome, strict=True))
        first = min([t for (t, _), o in zip(arrivals, outcome, strict=True) if o] + [fallback])
        expected += weight * first
    assert expected_first(fallback, arrivals) == pytest.approx(expected, rel=1e-9, abs=1e-9)


# --- decisions on hand-made circles --------------------------------------------------------------


def person(rid: str, eta: float, *fetch: tuple[str, float], p: float = 0.35) -> Person:
    return Person(rid, p, eta, eta, tuple(Fetch(a, e) for a, e in fetch))


def pending(*people: Person, at: float = 0.0) -> list[Sent]:
    return [Sent(p.responder_id, at, "pending", p.p_accept) for p in people]


def test_the_first_batch_is_sized_by_the_chance_of_success_not_the_expected_count() -> None:
    runners = [person(f"r{i}", 100 + i, (f"a{i}", 200 + i)) for i in range(10)]
    walkers = [person(f"w{i}", 50 + i) for i in range(10)]
    chosen = top_up([], runners + walkers, 0.0, RULES)
    fetchers = [p for p in chosen if p.fetch]
    # the AED: 6 runners at 0.35 give 1 - 0.65^6 = 0.925 ≥ 0.9, 5 give 0.884
    assert len(fetchers) == 6
    # help overall (2 acceptances wanted): 10 people give 0.914, 9 give 0.879
    assert len(chosen) == 10
    assert at_least([p.p_accept for p in chosen], 2) >= RULES.level
    assert at_least([p.p_accept for p in chosen[:-1]], 2) < RULES.level


def test_likelier_people_need_fewer_alerts() -> None:
    keen = [person(f"k{i}", 100 + i, (f"a{i}", 200 + i), p=0.7) for i in range(10)]
    assert len(top_up([], keen, 0.0, RULES)) < len(
        top_up(
            [],
            [person(p.responder_id, p.eta_s, (p.fetch[0].aed_id, p.fetch[0].eta_s)) for p in keen],
            0.0,
            RULES,
        )
    )


def test_a_decline_and_an_overdue_alert_call_replacements() -> None:
    people = [person(f"r{i}", 100 + i, (f"a{i}", 200 + i)) for i in range(20)]
    first = top_up([], people, 0.0, RULES)
    sent = pending(*first)
    assert top_up(sent, people, 5.0, RULES) == []  # nothing changed: no more alerts
    declined = with_answer(sent, first[0].responder_id, status="declined")
    assert len(top_up(declined, people, 5.0, RULES)) >= 1  # replaced at once
    overdue = top_up(sent, people, RULES.answer_timeout_s, RULES)
    assert len(overdue) >= 1 and not {p.responder_id for p in overdue} & {s.responder_id for s in sent}


def test_the_first_acceptor_beside_an_aed_fetches_it_and_the_next_goes_straight() -> None:
    beside = person("beside", 150, ("a", 160))
    close = person("close", 60, ("a", 260))
    sent = pending(beside, close)
    role = choose_role(beside, sent, [beside, close], 10.0, RULES)
    assert (role.role, role.aed_id) == ("fetch_aed", "a")
    sent = with_answer(
        sent, "beside", status="accepted", role="fetch_aed", aed_id="a", eta_s=160, answered_at_s=10
    )
    second = choose_role(close, sent, [beside, close], 12.0, RULES)
    assert (second.role, second.aed_id) == ("cpr", None)  # the AED is taken: straight to the patient


def test_an_acceptor_fetches_even_when_close_if_nobody_else_could() -> None:
    # the acceptor is 60 s from the patient; only they could bring the AED: the AED matters more
    close = person("close", 60, ("a", 200))
    other = person("other", 80)
    role = choose_role(close, pending(close, other), [close, other], 5.0, RULES)
    assert role.role == "fetch_aed"


def test_stand_down_once_enough_accepted() -> None:
    people = [person(f"r{i}", 100 + i, (f"a{i}", 200 + i)) for i in range(12)]
    sent = pending(*top_up([], people, 0.0, RULES))
    sent = with_answer(
        sent,
        sent[0].responder_id,
        status="accepted",
        role="fetch_aed",
        aed_id="a0",
        eta_s=200,
        answered_at_s=8,
    )
    assert stand_down(sent, people, RULES) == []  # one of two
    sent = with_answer(sent, sent[1].responder_id, status="accepted", role="cpr", eta_s=101, answered_at_s=9)
    cancelled = stand_down(sent, people, RULES)
    assert set(cancelled) == {s.responder_id for s in sent if s.status == "pending"}
    assert top_up(sent, people, 60.0, RULES) == []


def test_without_any_aed_in_reach_two_acceptances_are_enough() -> None:
    people = [person(f"w{i}", 60 + i) for i in range(12)]
    sent = pending(*top_up([], people, 0.0, RULES))
    for s in sent[:2]:
        sent = with_answer(sent, s.responder_id, status="accepted", role="cpr", eta_s=70, answered_at_s=5)
    assert enough(sent, people, RULES)


# --- invariants on random circles, replayed answer by answer ---------------------------------------


@st.composite
def circles(draw: st.DrawFn) -> tuple[list[Person], CircleRules, int]:
    n = draw(st.integers(0, 30))
    n_aeds = draw(st.integers(0, 6))
    people = []
    for i in range(n):
        eta = draw(st.floats(30, 300))
        k = draw(st.integers(0, min(3, n_aeds)))
        aeds = draw(st.permutations(range(n_aeds)))[:k] if n_aeds else []
        fetch = sorted((draw(st.floats(eta, 400)), f"a{j}") for j in aeds)
        people.append(
            Person(f"r{i:02d}", draw(st.floats(0.01, 0.99)), eta, eta, tuple(Fetch(a, e) for e, a in fetch))
        )
    rules = CircleRules(
        target_aed=draw(st.integers(0, 2)),
        target_cpr=draw(st.integers(0, 3)),
        level=draw(st.floats(0.5, 0.99)),
        alert_cap=draw(st.integers(1, 25)),
        answer_timeout_s=draw(st.floats(5, 60)),
    )
    return people, rules, draw(st.integers(0, 2**32 - 1))


@settings(max_examples=300, deadline=None)
@given(circles())
def test_replayed_circles_keep_every_rule(circle: tuple[list[Person], CircleRules, int]) -> None:
    people, rules, seed = circle
    rng = random.Random(seed)
    eligible = {p.responder_id for p in people}
    by_id = {p.responder_id: p for p in people}
    sent: list[Sent] = []
    now = 0.0
    stood_down = False
    for _ in range(60):
        new = top_up(sent, people, now, rules)
        assert {p.responder_id for p in new} <= eligible  # never the ineligible
        assert not {p.responder_id for p in new} & {s.responder_id for s in sent}  # nobody twice
        assert len(sent) + len(new) <= rules.alert_cap  # never over the cap
        if stood_down:
            assert new == []  # no alert after stand-down
        sent += [Sent(p.responder_id, now, "pending", p.p_accept) for p in new]
        waiting = [s for s in sent if s.status == "pending"]
        if not waiting:
            break
        now += rng.uniform(0, 20)
        answer = rng.choice(waiting)
        if rng.random() < answer.p_accept:
            acceptor = by_id[answer.responder_id]
            role = choose_role(acceptor, sent, people, now, rules)
            if role.role == "fetch_aed":  # one runner per AED, an AED they can bring
                assert role.aed_id not in taken_aeds(sent)
                assert role.aed_id in {f.aed_id for f in acceptor.fetch}
            change = {"role": role.role, "aed_id": role.aed_id, "eta_s": role.eta_s, "answered_at_s": now}
            sent = with_answer(sent, answer.responder_id, status="accepted", **change)
        else:
            sent = with_answer(sent, answer.responder_id, status=rng.choice(["declined", "expired"]))
        cancelled = stand_down(sent, people, rules)
        assert set(cancelled) <= {s.responder_id for s in sent if s.status == "pending"}
        if cancelled or enough(sent, people, rules):
            stood_down = True
        for rid in cancelled:
            sent = with_answer(sent, rid, status="cancelled")
    runners = [s.aed_id for s in sent if s.status == "accepted" and s.role == "fetch_aed"]
    assert len(runners) == len(set(runners))
    assert all(s.role is None for s in sent if s.status != "accepted")  # a role only for acceptors


# --- who is in reach ----------------------------------------------------------------------------

P = (22.5431, 114.0579)
M_PER_DEG_LAT = 111_195.0


def _at(north_m: float, east_m: float) -> tuple[float, float]:
    return P[0] + north_m / M_PER_DEG_LAT, P[1] + east_m / (M_PER_DEG_LAT * math.cos(math.radians(P[0])))


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(-800, 800), st.floats(-800, 800), st.sampled_from(["walk", "ebike"])), max_size=25
    ),
    st.lists(st.tuples(st.floats(-600, 600), st.floats(-600, 600)), max_size=6),
    st.floats(60, 480),
)
def test_people_in_reach_are_exactly_those_who_arrive_in_time(
    spots: list[tuple[float, float, str]], sites: list[tuple[float, float]], reach: float
) -> None:
    model = ReachModel()
    cands = []
    for i, (n, e, mode) in enumerate(spots):
        lat, lng = _at(n, e)
        cands.append(Candidate(f"r{i:02d}", lat, lng, mode, haversine_m(lat, lng, *P)))
    aeds = [AedSite(f"a{j}", *_at(n, e)) for j, (n, e) in enumerate(sites)]
    people = people_in_reach(*P, cands, aeds, model, reach, {"r00": 0.9}, prior=0.3)
    assert {p.responder_id for p in people} == {
        c.responder_id for c in cands if model.eta_s(c.distance_m, c.mode) <= reach
    }
    assert [p.eta_s for p in people] == sorted(p.eta_s for p in people)
    for p in people:
        assert p.p_accept == (0.9 if p.responder_id == "r00" else 0.3)
        assert all(f.eta_s <= reach + 0.05 for f in p.fetch)
        assert [f.eta_s for f in p.fetch] == sorted(f.eta_s for f in p.fetch)
        assert len({f.aed_id for f in p.fetch}) == len(p.fetch) <= 3
