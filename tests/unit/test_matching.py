"""The role assignment on hand-made scenes and random ones (pure: no servers)."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from dispatch.matching import AedSite, Candidate, MatchPolicy, assign_roles
from geo.distance import haversine_m
from geo.reach import ReachModel

P = (22.5431, 114.0579)  # the patient
MODEL = ReachModel()
M_PER_DEG_LAT = 111_195.0


def at(north_m: float, east_m: float = 0.0) -> tuple[float, float]:
    return P[0] + north_m / M_PER_DEG_LAT, P[1] + east_m / (M_PER_DEG_LAT * math.cos(math.radians(P[0])))


def person(rid: str, north_m: float, east_m: float = 0.0, mode: str = "walk") -> Candidate:
    lat, lng = at(north_m, east_m)
    return Candidate(rid, lat, lng, mode, haversine_m(lat, lng, *P))


def aed(aid: str, north_m: float, east_m: float = 0.0) -> AedSite:
    return AedSite(aid, *at(north_m, east_m))


def test_nobody_in_reach_says_so() -> None:
    far = person("far", 5_000)
    result = assign_roles(*P, [far], [aed("a", 10)], MODEL, 300, MatchPolicy())
    assert result.alerts == [] and result.coverage.covered is False
    assert result.coverage.fastest_eta_s is None and result.coverage.aed_eta_s is None


def test_the_runner_beside_an_aed_fetches_it() -> None:
    # "beside" stands 5 m from the AED, 150 m from the patient; "close" is 60 m from the patient
    scene = [person("close", 60), person("beside", 0, 150), person("other", -120)]
    result = assign_roles(
        *P, scene, [aed("wall", 0, 155)], MODEL, 300, MatchPolicy(target_cpr=2, target_aed=1)
    )
    roles = {a.responder_id: (a.role, a.aed_id) for a in result.alerts}
    assert roles["beside"] == ("fetch_aed", "wall")
    assert roles["close"] == ("cpr", None) and roles["other"] == ("cpr", None)
    assert result.coverage.fastest_eta_s == round(MODEL.eta_s(scene[0].distance_m, "walk"), 1)
    assert result.coverage.aed_eta_s == next(a.eta_s for a in result.alerts if a.role == "fetch_aed")


def test_aed_runners_minimise_when_the_aed_arrives_one_per_aed() -> None:
    scene = [person(f"r{i}", 40 * i, 30) for i in range(1, 8)]
    aeds = [aed("near", 100, 20), aed("mid", 250), aed("far", -150)]
    policy = MatchPolicy(target_cpr=1, target_aed=3, aed_candidates=3, acceptance_probability=1.0)
    result = assign_roles(*P, scene, aeds, MODEL, 600, policy)
    runners = [a for a in result.alerts if a.role == "fetch_aed"]
    assert len({a.aed_id for a in runners}) == len(runners) == 3
    # the first runner is the best (responder, AED) pair of all
    best = min(
        MODEL.fetch_eta_s(haversine_m(c.lat, c.lng, a.lat, a.lng), haversine_m(a.lat, a.lng, *P), c.mode)
        for c in scene
        for a in aeds
    )
    assert runners[0].eta_s == round(best, 1)


def test_alerts_allow_for_declines_up_to_the_cap() -> None:
    scene = [person(f"r{i:02d}", 10 * i) for i in range(1, 40)]
    policy = MatchPolicy(
        target_cpr=2, target_aed=1, aed_candidates=3, acceptance_probability=0.35, alert_cap=20
    )
    result = assign_roles(*P, scene, [aed("a", 5), aed("b", -5), aed("c", 0, 8)], MODEL, 300, policy)
    roles = [a.role for a in result.alerts]
    assert roles.count("cpr") == math.ceil(2 / 0.35) == 6
    assert roles.count("fetch_aed") == math.ceil(1 / 0.35) == 3
    capped = assign_roles(*P, scene, [], MODEL, 300, MatchPolicy(acceptance_probability=0.05, alert_cap=7))
    assert len(capped.alerts) == 7
    assert [a.responder_id for a in capped.alerts] == [f"r{i:02d}" for i in range(1, 8)]  # fastest first


def test_an_aed_out_of_reach_is_not_used_and_excluded_people_are_skipped() -> None:
    scene = [person("a", 50), person("b", 80)]
    result = assign_roles(*P, scene, [aed("remote", 3_000)], MODEL, 300, MatchPolicy())
    assert all(a.role == "cpr" for a in result.alerts) and result.coverage.aed_eta_s is None
    again = assign_roles(*P, scene, [], MODEL, 300, MatchPolicy(), exclude={"a"})
    assert [a.responder_id for a in again.alerts] == ["b"]


def test_faster_modes_reach_further() -> None:
    walker, rider = person("walker", 800, mode="walk"), person("rider", 1_100, mode="ebike")
    result = assign_roles(*P, [walker, rider], [], MODEL, 300, MatchPolicy())
    assert [a.responder_id for a in result.alerts] == ["rider"]  # 800 m on foot takes 773 s


coords = st.tuples(st.floats(-2_500, 2_500), st.floats(-2_500, 2_500))


@settings(max_examples=200, deadline=None)
@given(
    people=st.lists(st.tuples(coords, st.sampled_from(["walk", "run", "ebike"])), max_size=30),
    sites=st.lists(coords, max_size=6),
    reach=st.floats(60, 480),
    p=st.floats(0.05, 1.0),
    cap=st.integers(1, 25),
)
def test_invariants_on_random_scenes(people, sites, reach, p, cap) -> None:
    scene = [person(f"r{i}", n, e, mode) for i, ((n, e), mode) in enumerate(people)]
    aeds = [aed(f"a{i}", n, e) for i, (n, e) in enumerate(sites)]
    policy = MatchPolicy(acceptance_probability=p, alert_cap=cap)
    result = assign_roles(*P, scene, aeds, MODEL, reach, policy)
    ids = [a.responder_id for a in result.alerts]
    assert len(ids) == len(set(ids)) <= cap
    runners = [a for a in result.alerts if a.role == "fetch_aed"]
    assert len({a.aed_id for a in runners}) == len(runners) <= policy.aed_candidates
    assert all(a.eta_s <= round(reach, 1) for a in result.alerts)
    eligible = {c.responder_id for c in scene if MODEL.eta_s(c.distance_m, c.mode) <= reach}
    assert set(ids) <= eligible
    assert result.coverage.covered == bool(eligible)
    cpr = [a for a in result.alerts if a.role == "cpr"]
    assert [a.eta_s for a in cpr] == sorted(a.eta_s for a in cpr)
    # without trimming to the cap, nobody left out of the CPR list is faster than someone in it
    if cpr and len(ids) < cap and len(cpr) < len(eligible - {a.responder_id for a in runners}):
        left = [c for c in scene if c.responder_id in eligible and c.responder_id not in ids]
        assert all(MODEL.eta_s(c.distance_m, c.mode) >= cpr[-1].eta_s - 0.05 for c in left)


@settings(max_examples=200, deadline=None)
@given(
    people=st.lists(st.tuples(coords, st.sampled_from(["walk", "bicycle", "car"])), max_size=40),
    sites=st.lists(coords, max_size=8),
    reach=st.floats(60, 480),
)
def test_aed_runners_equal_a_search_over_every_responder_and_aed(people, sites, reach) -> None:
    """Leaving out people whose direct trip plus pick-up is beyond reach never changes who fetches what."""
    scene = [person(f"r{i}", n, e, mode) for i, ((n, e), mode) in enumerate(people)]
    aeds = [aed(f"a{i}", n, e) for i, (n, e) in enumerate(sites)]
    result = assign_roles(*P, scene, aeds, MODEL, reach, MatchPolicy())
    everything = sorted(
        (MODEL.fetch_eta_s(haversine_m(c.lat, c.lng, a.lat, a.lng), haversine_m(a.lat, a.lng, *P), c.mode),
         c.responder_id, a.aed_id)
        for c in scene
        if MODEL.eta_s(c.distance_m, c.mode) <= reach
        for a in aeds
    )  # fmt: skip
    expected: list[tuple[str, str, float]] = []
    for eta, rid, aid in everything:
        if eta > reach or len(expected) == MatchPolicy().aed_candidates:
            break
        if all(rid != r and aid != a for r, a, _ in expected):
            expected.append((rid, aid, round(eta, 1)))
    assert [(a.responder_id, a.aed_id, a.eta_s) for a in result.alerts if a.role == "fetch_aed"] == expected
