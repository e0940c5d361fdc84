"""Who is in reach and which AEDs each could bring, on hand-made scenes and random ones (pure)."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from dispatch.matching import AedSite, Candidate, coverage_of, people_in_reach
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


def reach(scene: list[Candidate], aeds: list[AedSite], reach_s: float = 300) -> dict:
    return {p.responder_id: p for p in people_in_reach(*P, scene, aeds, MODEL, reach_s, {}, prior=0.35)}


def test_nobody_in_reach_says_so() -> None:
    far = person("far", 5_000)
    assert reach([far], [aed("a", 10)]) == {}
    verdict = coverage_of([])
    assert verdict.covered is False
    assert verdict.fastest_eta_s is None and verdict.aed_eta_s is None


def test_the_runner_beside_an_aed_brings_it_soonest() -> None:
    # "beside" stands 5 m from the AED, 150 m from the patient; "close" is 60 m from the patient
    scene = [person("close", 60), person("beside", 0, 150), person("other", -120)]
    people = reach(scene, [aed("wall", 0, 155)])
    beside = people["beside"]
    assert [f.aed_id for f in beside.fetch] == ["wall"]
    assert beside.best_fetch_s == min(p.best_fetch_s for p in people.values())
    verdict = coverage_of(list(people.values()))
    assert verdict.fastest_eta_s == round(MODEL.eta_s(scene[0].distance_m, "walk"), 1)
    assert verdict.aed_eta_s == beside.best_fetch_s


def test_an_aed_out_of_reach_is_not_offered() -> None:
    people = reach([person("a", 50), person("b", 80)], [aed("remote", 3_000)])
    assert all(p.fetch == () for p in people.values())
    assert coverage_of(list(people.values())).aed_eta_s is None


def test_faster_modes_reach_further() -> None:
    walker, rider = person("walker", 800, mode="walk"), person("rider", 1_100, mode="ebike")
    assert list(reach([walker, rider], [])) == ["rider"]  # 800 m on foot takes 773 s


def test_a_known_chance_is_used_and_everyone_else_gets_the_prior() -> None:
    scene = [person("a", 50), person("b", 80)]
    people = people_in_reach(*P, scene, [], MODEL, 300, {"a": 0.8}, prior=0.2)
    assert [(p.responder_id, p.p_accept) for p in people] == [("a", 0.8), ("b", 0.2)]


coords = st.tuples(st.floats(-2_500, 2_500), st.floats(-2_500, 2_500))


@settings(max_examples=200, deadline=None)
@given(
    people=st.lists(st.tuples(coords, st.sampled_from(["walk", "bicycle", "car"])), max_size=40),
    sites=st.lists(coords, max_size=8),
    reach_s=st.floats(60, 480),
)
def test_fetch_options_equal_a_search_over_every_responder_and_aed(people, sites, reach_s) -> None:
    """Leaving out pairs the triangle inequality proves too long never changes anyone's options."""
    scene = [person(f"r{i}", n, e, mode) for i, ((n, e), mode) in enumerate(people)]
    aeds = [aed(f"a{i}", n, e) for i, (n, e) in enumerate(sites)]
    got = reach(scene, aeds, reach_s)
    for c in scene:
        if MODEL.eta_s(c.distance_m, c.mode) > reach_s:
            assert c.responder_id not in got
            continue
        to_aed = [
            (haversine_m(c.lat, c.lng, a.lat, a.lng), haversine_m(a.lat, a.lng, *P), a.aed_id) for a in aeds
        ]
        every = sorted((MODEL.fetch_eta_s(d_ra, d_ap, c.mode), aid) for d_ra, d_ap, aid in to_aed)
        want = [(aid, round(eta, 1)) for eta, aid in every if eta <= reach_s][:3]
        assert [(f.aed_id, f.eta_s) for f in got[c.responder_id].fetch] == want
