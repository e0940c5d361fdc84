"""Dispatch-policy comparison: each policy's selection rules on hand-made scenes, paired answers,
the deterministic extremes of acceptance, and a whole comparison reproducible for a seed (pure)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from shapely.geometry import MultiPolygon, Point, box

from aed_registry.availability import HoursPolicy
from core.config import Settings
from dispatch.matching import AedSite, Candidate, MatchPolicy, assign_roles
from geo.distance import haversine_m
from geo.reach import ReachModel
from simulator.city import City, District
from simulator.demo import DemoCity, build_demo
from simulator.incidents import SimIncident, acceptance_draws, incident_stream
from simulator.policies import (
    EveryoneWithin,
    NearestWithRunners,
    Scene,
    ServicePolicy,
    best_runners,
    simulate,
)
from simulator.policy_run import (
    Comparison,
    PolicyRow,
    compare,
    run_study,
    scenes,
    standard_policies,
    summarise,
)
from simulator.population import SimResponder, on_shift, shift_at

MODEL = ReachModel()
SETTINGS = Settings()
HOURS = HoursPolicy.from_settings(SETTINGS)
TZ = ZoneInfo("Asia/Shanghai")
P = (22.5431, 114.0579)
M_PER_DEG_LAT = 111_195.0
NOON = datetime(2026, 11, 23, 12, 0, tzinfo=TZ)


def at(north_m: float, east_m: float = 0.0) -> tuple[float, float]:
    return P[0] + north_m / M_PER_DEG_LAT, P[1] + east_m / (M_PER_DEG_LAT * math.cos(math.radians(P[0])))


def worker(rid: str, north_m: float, east_m: float = 0.0, mode: str = "walk") -> SimResponder:
    return SimResponder(rid, "sanitation_worker", *at(north_m, east_m), mode, "day")


def aed(aid: str, north_m: float, east_m: float = 0.0) -> AedSite:
    return AedSite(aid, *at(north_m, east_m))


def incident(k: int = 0) -> SimIncident:
    return SimIncident(k, *P, 0, NOON)


def random_scene(seed: int, n_people: int = 60, n_aeds: int = 25, spread_m: float = 2500) -> Scene:
    rng = np.random.default_rng(seed)
    people = [
        worker(f"r{i:03d}", *rng.uniform(-spread_m, spread_m, 2), str(rng.choice(["walk", "ebike"])))
        for i in range(n_people)
    ]
    sites = [aed(f"a{i:03d}", *rng.uniform(-spread_m, spread_m, 2)) for i in range(n_aeds)]
    return Scene.around(incident(seed), people, sites)


def all_accept(scene: Scene) -> dict[str, float]:
    return {c.responder_id: 0.0 for c in scene.responders}


# --- policy A ---------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_policy_a_alerts_everyone_within_400_m_straight_to_the_patient(seed: int) -> None:
    scene = random_scene(seed, n_people=200, spread_m=900)
    alerts = EveryoneWithin(MODEL).alerts(scene)
    within = {c.responder_id for c in scene.responders if haversine_m(c.lat, c.lng, *P) <= 400}
    assert within, "the scene must put someone within 400 m for the check to mean anything"
    assert {a.responder_id for a in alerts} == within
    assert all(a.role == "cpr" and a.aed_id is None for a in alerts)
    by_id = {c.responder_id: c for c in scene.responders}
    for a in alerts:
        c = by_id[a.responder_id]
        assert a.eta_s == pytest.approx(MODEL.eta_s(c.distance_m, c.mode))


# --- policy B ---------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_policy_b_alerts_the_30_nearest_within_1300_m_and_a_third_fetch(seed: int) -> None:
    scene = random_scene(seed, n_people=120, n_aeds=40, spread_m=2000)
    alerts = NearestWithRunners(MODEL).alerts(scene)
    distance = {c.responder_id: haversine_m(c.lat, c.lng, *P) for c in scene.responders}
    in_radius = sorted((d, r) for r, d in distance.items() if d <= 1300)
    assert len(in_radius) > 30, "the scene must crowd the radius for the cap to be tested"
    assert len(alerts) == 30
    assert {a.responder_id for a in alerts} == {r for _, r in in_radius[:30]}
    runners = [a for a in alerts if a.role == "fetch_aed"]
    assert len(runners) == 10
    assert len({a.aed_id for a in runners}) == 10, "distinct AEDs while there are enough"
    aed_at = {a.aed_id: a for a in scene.aeds}
    for a in runners:
        c, site = next(c for c in scene.responders if c.responder_id == a.responder_id), aed_at[a.aed_id]
        assert haversine_m(site.lat, site.lng, *P) <= 1300
        d_ra, d_ap = haversine_m(c.lat, c.lng, site.lat, site.lng), haversine_m(site.lat, site.lng, *P)
        assert a.eta_s == pytest.approx(MODEL.fetch_eta_s(d_ra, d_ap, c.mode))


def test_policy_b_sends_the_best_placed_each_to_the_aed_that_reaches_the_patient_soonest() -> None:
    people = [
        worker("beside-near-aed", 205),  # 5 m from the AED 200 m north
        worker("beside-far-aed", -795),  # 5 m from the AED 800 m south
        worker("close", 50),
        worker("middle", 0, 300),
        worker("east", 0, 600),
        worker("west", 0, -650),
    ]
    scene = Scene.around(incident(), people, [aed("north", 200), aed("south", -800)])
    alerts = {a.responder_id: a for a in NearestWithRunners(MODEL).alerts(scene)}
    assert len(alerts) == 6
    runners = {r: a.aed_id for r, a in alerts.items() if a.role == "fetch_aed"}
    # 6 alerted → 2 runners. The AED beside a worker reaches the patient first (280 s), so that pair
    # goes first; the other AED goes to whoever brings it soonest: the worker standing beside it.
    assert runners == {"beside-near-aed": "north", "beside-far-aed": "south"}
    assert alerts["beside-near-aed"].eta_s == pytest.approx(MODEL.fetch_eta_s(5, 200, "walk"), abs=0.5)


def test_policy_b_reuses_an_aed_only_when_there_are_not_enough() -> None:
    people = [worker(f"r{i}", 100 * (i + 1)) for i in range(9)]
    scene = Scene.around(incident(), people, [aed("only", 150)])
    runners = [a for a in NearestWithRunners(MODEL).alerts(scene) if a.role == "fetch_aed"]
    assert len(runners) == 3 and {a.aed_id for a in runners} == {"only"}
    no_aeds = Scene.around(incident(), people, [])
    assert all(a.role == "cpr" for a in NearestWithRunners(MODEL).alerts(no_aeds))


def test_best_runners_takes_pairs_greedily_by_fetch_eta() -> None:
    scene = random_scene(11, n_people=12, n_aeds=6, spread_m=800)
    near = list(scene.responders)
    picked = best_runners(scene, near, list(range(len(scene.aeds))), 4, MODEL)
    assert len(picked) == 4 and len({j for _, j, _ in picked}) == 4
    etas = [eta for _, _, eta in picked]
    assert etas == sorted(etas)
    used_r, used_a = set(), set()
    for i, j, eta in picked:  # each pick is the best pair among those still free
        free = [
            MODEL.fetch_eta_s(haversine_m(c.lat, c.lng, a.lat, a.lng), haversine_m(a.lat, a.lng, *P), c.mode)
            for ci, c in enumerate(near)
            for aj, a in enumerate(scene.aeds)
            if ci not in used_r and aj not in used_a
        ]
        assert eta == pytest.approx(min(free))
        used_r.add(i)
        used_a.add(j)


# --- ours ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_ours_first_batch_is_exactly_assign_roles(seed: int) -> None:
    scene = random_scene(seed, n_people=80, n_aeds=30, spread_m=1800)
    policy = ServicePolicy.from_settings(SETTINGS, MODEL, escalation=False)
    radius = MODEL.max_distance_for(SETTINGS.reach_s - MODEL.aed_pickup_s)
    sites = sorted(scene.aeds, key=lambda a: haversine_m(a.lat, a.lng, *P))
    sites = [a for a in sites if haversine_m(a.lat, a.lng, *P) <= radius][
        : max(10, 3 * SETTINGS.aed_candidates)
    ]
    cands = [Candidate(c.responder_id, c.lat, c.lng, c.mode, c.distance_m) for c in scene.responders]
    expected = assign_roles(*P, cands, sites, MODEL, SETTINGS.reach_s, MatchPolicy.from_settings(SETTINGS))
    assert expected.alerts, "the scene must give assign_roles someone to alert"
    got = policy.alerts(scene)
    assert [(a.responder_id, a.role, a.eta_s, a.aed_id) for a in got] == [
        (p.responder_id, p.role, p.eta_s, p.aed_id) for p in expected.alerts
    ]
    assert all(a.sent_at_s == 0 for a in got)


def test_ours_escalates_wider_and_later_until_the_cap_when_nobody_accepts() -> None:
    scene = random_scene(3, n_people=150, n_aeds=30, spread_m=2500)
    policy = ServicePolicy.from_settings(SETTINGS, MODEL)
    outcome = simulate(scene, policy, all_accept(scene), acceptance=0.0)
    assert outcome.accepted == frozenset() and outcome.responder_s == math.inf
    first = policy.alerts(scene)
    assert len(outcome.alerts) == SETTINGS.alert_cap > len(first)
    assert len({a.responder_id for a in outcome.alerts}) == len(outcome.alerts), "nobody alerted twice"
    for a in outcome.alerts:
        step = round(a.sent_at_s / SETTINGS.escalation_interval_s)
        assert a.sent_at_s == step * SETTINGS.escalation_interval_s
        reach = min(SETTINGS.reach_s + step * SETTINGS.escalation_step_s, SETTINGS.reach_max_s)
        assert a.eta_s <= reach
    assert max(a.sent_at_s for a in outcome.alerts) > 0


def test_ours_does_not_escalate_once_the_targets_have_accepted() -> None:
    scene = random_scene(4, n_people=150, n_aeds=30, spread_m=1500)
    policy = ServicePolicy.from_settings(SETTINGS, MODEL)
    first = policy.alerts(scene)
    assert len(first) >= SETTINGS.target_cpr + SETTINGS.target_aed
    outcome = simulate(scene, policy, all_accept(scene), acceptance=1.0)
    assert list(outcome.alerts) == first


def test_ours_escalation_sends_nobody_for_an_aed_an_accepted_runner_is_bringing() -> None:
    rng = np.random.default_rng(8)
    crowd = [worker(f"e{i:02d}", *rng.uniform(-900, 900, 2), "ebike") for i in range(30)]
    scene = Scene.around(incident(), [worker("beside", 105, 0, "ebike"), *crowd], [aed("wall", 100)])
    policy = ServicePolicy.from_settings(SETTINGS, MODEL)
    first = policy.alerts(scene)
    assert [(a.responder_id, a.aed_id) for a in first if a.role == "fetch_aed"] == [("beside", "wall")]
    draws = {c.responder_id: 0.99 for c in scene.responders} | {"beside": 0.0}  # only the runner says yes
    outcome = simulate(scene, policy, draws, acceptance=0.5)
    later = outcome.alerts[len(first) :]
    assert later, "one acceptance of three wanted must escalate"
    assert all(a.role == "cpr" for a in later)
    # without the busy-AED rule, the widened reach would send a second runner to the same AED
    unbusy = assign_roles(
        *P, scene.responders, scene.aeds, MODEL, SETTINGS.reach_s + SETTINGS.escalation_step_s,
        MatchPolicy.from_settings(SETTINGS), exclude={a.responder_id for a in first},
    )  # fmt: skip
    assert any(a.role == "fetch_aed" for a in unbusy.alerts)


# --- acceptance -----------------------------------------------------------------------------------


def test_acceptance_draws_depend_only_on_seed_incident_and_responder() -> None:
    keys = np.arange(0, 5000, 7)
    draws = acceptance_draws(3, 42, keys)
    assert np.all((draws >= 0) & (draws < 1))
    assert abs(draws.mean() - 0.5) < 0.05
    assert acceptance_draws(3, 42, keys[::-1])[::-1].tolist() == draws.tolist()
    assert acceptance_draws(3, 42, keys[10:11])[0] == draws[10]
    assert not np.array_equal(acceptance_draws(4, 42, keys), draws)
    assert not np.array_equal(acceptance_draws(3, 43, keys), draws)


@pytest.fixture(scope="module")
def small_demo() -> DemoCity:
    return build_demo(0, responders=2000, aeds=5000)


def _compare(
    demo: DemoCity, acceptance: float, n: int = 150, seed: int = 0
) -> tuple[list[SimIncident], Comparison]:
    stream = incident_stream(demo.city, n, seed, tz=TZ)
    policies = standard_policies(SETTINGS, MODEL)
    return stream, compare(
        stream, demo.responders, demo.aeds, policies, seed=seed, acceptance=acceptance, hours=HOURS
    )


def test_answers_are_paired_across_policies(small_demo: DemoCity) -> None:
    _, comparison = _compare(small_demo, 0.5)
    shared = 0
    keys = list(comparison.outcomes)
    for k in range(len(comparison.incidents)):
        for a, b in [(x, y) for x in keys for y in keys if x < y]:
            oa, ob = comparison.outcomes[a][k], comparison.outcomes[b][k]
            both = {x.responder_id for x in oa.alerts} & {x.responder_id for x in ob.alerts}
            shared += len(both)
            assert {r for r in both if r in oa.accepted} == {r for r in both if r in ob.accepted}
    assert shared > 100, "policies must alert some of the same people for the check to mean anything"


def test_everyone_accepting_gives_the_best_case_and_nobody_gives_nothing(small_demo: DemoCity) -> None:
    stream, best = _compare(small_demo, 1.0)
    _, none = _compare(small_demo, 0.0)
    people = small_demo.responders
    for k, inc in enumerate(stream):
        for key, outcomes in best.outcomes.items():
            o = outcomes[k]
            assert o.accepted == {a.responder_id for a in o.alerts}
            assert o.responder_s == min((a.arrival_s for a in o.alerts), default=math.inf)
            fetch = [a.arrival_s for a in o.alerts if a.role == "fetch_aed"]
            assert o.aed_s == min(fetch, default=math.inf)
            off = none.outcomes[key][k]
            assert off.accepted == frozenset() and off.responder_s == off.aed_s == math.inf
        # policy A's best case, straight from the definition: the fastest on-shift worker within 400 m
        hour = HOURS.local(inc.at).hour
        direct = [
            MODEL.eta_s(d, p.mode)
            for p in on_shift(people, hour)
            if (d := haversine_m(p.lat, p.lng, inc.lat, inc.lng)) <= 400
        ]
        assert best.outcomes["everyone_400m"][k].responder_s == pytest.approx(min(direct, default=math.inf))


def test_bulk_scenes_equal_measuring_every_person_and_aed(small_demo: DemoCity) -> None:
    stream = incident_stream(small_demo.city, 40, 5, tz=TZ)
    for scene, keys in scenes(stream, small_demo.responders, small_demo.aeds, HOURS, 1500.0, 1200.0):
        inc = scene.incident
        working = [p for p in small_demo.responders if p.shift == shift_at(HOURS.local(inc.at).hour)]
        near = [p for p in working if haversine_m(p.lat, p.lng, inc.lat, inc.lng) <= 1500]
        open_aeds = [
            AedSite(a.aed_id, a.lat, a.lng)
            for a in small_demo.aeds
            if HOURS.offered(a.opening_hours, inc.at) and haversine_m(a.lat, a.lng, inc.lat, inc.lng) <= 1200
        ]
        expected = Scene.around(inc, near, open_aeds)
        assert [c.responder_id for c in scene.responders] == [c.responder_id for c in expected.responders]
        assert [small_demo.responders[k].responder_id for k in keys] == [
            c.responder_id for c in scene.responders
        ]
        assert [a.aed_id for a in scene.aeds] == [a.aed_id for a in expected.aeds]
        assert scene.aed_distance_m == pytest.approx(expected.aed_distance_m)


# --- the stream and the whole study ---------------------------------------------------------------


def test_incidents_follow_population_and_spread_over_one_week() -> None:
    west = box(P[1] - 0.03, P[0] - 0.02, P[1], P[0] + 0.02)
    east = box(P[1], P[0] - 0.02, P[1] + 0.03, P[0] + 0.02)
    city = City(
        "two",
        (District("West", 30_000, MultiPolygon([west])), District("East", 10_000, MultiPolygon([east]))),
    )
    stream = incident_stream(city, 3000, 1, tz=TZ)
    share_west = np.mean([x.district == 0 for x in stream])
    assert 0.72 < share_west < 0.78
    inside = city.outline.buffer(0.005)  # a boundary cell may stick out by less than its size
    assert all(inside.contains(Point(x.lng, x.lat)) for x in stream)
    start = datetime(2026, 11, 23, tzinfo=TZ)
    assert all(start <= x.at < start + timedelta(days=7) for x in stream)
    assert {x.at.weekday() for x in stream} == set(range(7))
    assert min(x.at for x in stream).astimezone(UTC) < max(x.at for x in stream).astimezone(UTC)


def test_the_whole_study_is_reproducible_for_a_seed(small_demo: DemoCity) -> None:
    def run(seed: int) -> list[PolicyRow]:
        comparison = run_study(
            small_demo.city, small_demo.responders, small_demo.aeds,
            incidents=120, seed=seed, acceptance=0.35, settings=SETTINGS,
        )  # fmt: skip
        return summarise(comparison, small_demo.city.names)

    first = run(0)
    assert run(0) == first
    assert run(1) != first
    city = [r for r in first if r.district == "whole city"]
    assert [r.policy for r in city] == ["everyone_400m", "nearest30_1300m", "ours", "ours_first_batch"]
    assert all(r.incidents == 120 for r in city)
    assert sum(r.incidents for r in first if r.policy == "ours" and r.district != "whole city") == 120
