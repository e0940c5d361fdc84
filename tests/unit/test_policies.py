"""Dispatch-policy comparison: each policy's rules on hand-made scenes, the event engine (replacements,
stand-down, escalation), paired answers, acceptance learned only from history, and the report (pure)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from shapely.geometry import MultiPolygon, Point, box

from aed_registry.availability import HoursPolicy
from core.config import Settings
from dispatch.matching import AedSite
from dispatch.policy.circle import CircleRules, Fetch, Person, Role, Sent, stand_down
from geo.distance import haversine_m
from geo.reach import ReachModel
from simulator.answers import Answer, AnswerModel, answers_to
from simulator.city import City, District
from simulator.demo import DemoCity, build_demo
from simulator.events import play, ran_for_nothing
from simulator.incidents import SimIncident, acceptance_draws, incident_stream, uniform_draws
from simulator.policies import (
    EveryoneWithin,
    FirstAcceptorsFetch,
    NearestWithRunners,
    Policy,
    RescueCircle,
    Scene,
    ViaAedWhenOnTheWay,
    best_runners,
)
from simulator.policy_report import Goal, goal, policies_json
from simulator.policy_run import (
    Comparison,
    PolicyRow,
    Workers,
    compare,
    knob_variants,
    learn_workers,
    run_study,
    scenes,
    standard_policies,
    street_names,
    summarise,
)
from simulator.population import SimResponder, shift_at

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


def first_alerts(policy: Policy, scene: Scene, estimates: Mapping[str, float] | None = None) -> list[Sent]:
    """The alerts a policy sends when the incident opens."""
    return list(policy.circle(scene, estimates or {}).open().send)


def answers(scene: Scene, default: Answer, **special: Answer) -> dict[str, Answer]:
    """Everyone in the scene answers `default`, except the named ones."""
    return {c.responder_id: special.get(c.responder_id, default) for c in scene.responders}


ACCEPT_FAST, DECLINE_FAST, SILENT = (
    Answer(True, True, 5.0),
    Answer(False, True, 10.0),
    Answer(False, False, 0.0),
)


# --- policy A ---------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_policy_a_alerts_everyone_within_400_m_straight_to_the_patient(seed: int) -> None:
    scene = random_scene(seed, n_people=200, spread_m=900)
    alerts = first_alerts(EveryoneWithin(MODEL), scene)
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
    alerts = first_alerts(NearestWithRunners(MODEL), scene)
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
    alerts = {a.responder_id: a for a in first_alerts(NearestWithRunners(MODEL), scene)}
    assert len(alerts) == 6
    runners = {r: a.aed_id for r, a in alerts.items() if a.role == "fetch_aed"}
    # 6 alerted → 2 runners. The AED beside a worker reaches the patient first (280 s), so that pair
    # goes first; the other AED goes to whoever brings it soonest: the worker standing beside it.
    assert runners == {"beside-near-aed": "north", "beside-far-aed": "south"}
    assert alerts["beside-near-aed"].eta_s == pytest.approx(MODEL.fetch_eta_s(5, 200, "walk"), abs=0.5)


def test_policy_b_reuses_an_aed_only_when_there_are_not_enough() -> None:
    people = [worker(f"r{i}", 100 * (i + 1)) for i in range(9)]
    scene = Scene.around(incident(), people, [aed("only", 150)])
    runners = [a for a in first_alerts(NearestWithRunners(MODEL), scene) if a.role == "fetch_aed"]
    assert len(runners) == 3 and {a.aed_id for a in runners} == {"only"}
    no_aeds = Scene.around(incident(), people, [])
    assert all(a.role == "cpr" for a in first_alerts(NearestWithRunners(MODEL), no_aeds))


def test_best_runners_takes_pairs_greedily_by_fetch_eta() -> None:
    scene = random_scene(11, n_people=12, n_aeds=6, spread_m=800)
    near = list(scene.responders)
    picked = best_runners(scene, list(range(len(near))), list(range(len(scene.aeds))), 4, MODEL)
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


# --- HartslagNu-style and Hjerteløber-style ---------------------------------------------------------


def test_hartslagnu_sends_for_an_aed_only_within_500_m_and_at_most_5_percent_longer() -> None:
    people = [
        worker("on-the-way", 600),  # AED 300 m north lies on its line to the patient: via = direct
        worker("detour", 0, 600),  # AED 400 m from it, but via it is far longer than 600 m direct
        worker("too-far-from-aed", 900),  # AED on the way, but 600 m from it
    ]
    sites = [aed("north", 300), aed("side", 400, 600)]
    scene = Scene.around(incident(), people, sites)
    policy = ViaAedWhenOnTheWay(MODEL)
    roles = {a.responder_id: (a.role, a.aed_id) for a in first_alerts(policy, scene)}
    assert roles == {
        "on-the-way": ("fetch_aed", "north"),
        "detour": ("cpr", None),
        "too-far-from-aed": ("cpr", None),
    }
    # the 5 % rule exactly: an AED 0.1 % of the direct route off the line is fine, 6 % is not
    inside, outside = aed("ok", 300, 30), aed("off", 300, 120)  # 600 → 601 m, and 600 → 646 m via it
    for site, role in ((inside, "fetch_aed"), (outside, "cpr")):
        alone = Scene.around(incident(), [worker("w", 600)], [site])
        assert [a.role for a in first_alerts(policy, alone)] == [role]


def test_hartslagnu_aims_at_two_thirds_via_an_aed() -> None:
    people = [worker(f"w{i}", 300 + 50 * i) for i in range(6)]
    scene = Scene.around(incident(), people, [aed("north", 150)])  # on everyone's way, < 500 m
    alerts = first_alerts(ViaAedWhenOnTheWay(MODEL), scene)
    assert len(alerts) == 6
    assert sorted(a.responder_id for a in alerts if a.role == "fetch_aed") == ["w0", "w1", "w2", "w3"]


def test_hjertelober_sends_the_first_four_acceptors_for_aeds_and_the_fifth_straight() -> None:
    people = [worker(f"w{i}", 100 * (i + 1), 0, "ebike") for i in range(6)]
    sites = [aed(f"a{i}", 100 * i + 50, 20) for i in range(6)]
    scene = Scene.around(incident(), people, sites)
    # the farthest answers first: the order of acceptance, not of distance, decides the roles
    said = {f"w{i}": Answer(True, True, 60.0 - 10 * i) for i in range(6)}
    outcome = play(FirstAcceptorsFetch(MODEL).circle(scene, {}), said, horizon_s=900, wanted=2)
    assert len(outcome.alerts) == 6 and all(a.sent_at_s == 0 for a in outcome.alerts)
    by_answer = sorted(outcome.alerts, key=lambda a: a.answered_at_s or math.inf)
    assert [a.responder_id for a in by_answer] == ["w5", "w4", "w3", "w2", "w1", "w0"]
    assert [a.role for a in by_answer] == ["fetch_aed"] * 4 + ["cpr"] * 2
    assert len({a.aed_id for a in by_answer[:4]}) == 4, "a different AED each while there are"
    assert all(a.aed_id is None for a in by_answer[4:])


def test_hjertelober_alerts_at_most_twenty_nearest() -> None:
    scene = random_scene(2, n_people=150, n_aeds=10, spread_m=1200)
    alerts = first_alerts(FirstAcceptorsFetch(MODEL), scene)
    assert [a.responder_id for a in alerts] == [c.responder_id for c in scene.responders[:20]]
    assert all(a.role is None for a in alerts), "roles are given on accepting"


# --- ours: the service's circle in time -------------------------------------------------------------

OURS = RescueCircle.from_settings(SETTINGS, MODEL)


def crowd(n: int, radius_m: float, seed: int, mode: str = "ebike", prefix: str = "c") -> list[SimResponder]:
    rng = np.random.default_rng(seed)
    return [worker(f"{prefix}{i:02d}", *rng.uniform(-radius_m, radius_m, 2), mode) for i in range(n)]


def estimates_of(scene: Scene, p: float = 0.35) -> dict[str, float]:
    return {c.responder_id: p for c in scene.responders}


def test_ours_replaces_a_decline_at_the_moment_of_the_decline() -> None:
    sites = [aed(f"a{i}", *np.random.default_rng(i).uniform(-600, 600, 2)) for i in range(8)]
    scene = Scene.around(incident(), crowd(60, 900, 1), sites)
    circle = OURS.circle(scene, estimates_of(scene))
    first = {a.responder_id for a in circle.open().send}
    said = answers(scene, DECLINE_FAST)  # everyone declines 10 s after their alert
    outcome = play(OURS.circle(scene, estimates_of(scene)), said, horizon_s=900, wanted=2)
    later = [a for a in outcome.alerts if a.responder_id not in first]
    assert later, "declines must be replaced"
    assert min(a.sent_at_s for a in later) == DECLINE_FAST.delay_s < SETTINGS.escalation_interval_s
    assert all(a.sent_at_s % DECLINE_FAST.delay_s == 0 for a in later), "only at decline moments"
    assert len(outcome.alerts) <= SETTINGS.alert_cap
    assert len({a.responder_id for a in outcome.alerts}) == len(outcome.alerts), "nobody alerted twice"


def test_ours_stands_down_the_pending_once_enough_accepted_and_they_do_not_run() -> None:
    sites = [aed(f"a{i}", *np.random.default_rng(10 + i).uniform(-500, 500, 2)) for i in range(8)]
    scene = Scene.around(incident(), crowd(40, 700, 2), sites)
    # everyone would accept, each a little later than the one before
    said = {c.responder_id: Answer(True, True, 5.0 + 7 * k) for k, c in enumerate(scene.responders)}
    outcome = play(OURS.circle(scene, estimates_of(scene, 0.2)), said, horizon_s=900, wanted=2)
    cancelled = [a for a in outcome.alerts if a.status == "cancelled"]
    accepted = [a for a in outcome.alerts if a.status == "accepted"]
    assert cancelled, "the pool at 0.2 each is larger than the two wanted"
    assert len(accepted) == SETTINGS.target_cpr + SETTINGS.target_aed
    assert sum(a.role == "fetch_aed" for a in accepted) == SETTINGS.target_aed
    stood_down_at = max(a.answered_at_s or 0.0 for a in accepted)
    assert all(a.answered_at_s is None and a.arrival_s == math.inf for a in cancelled), "they do not run"
    assert all(a.sent_at_s + said[a.responder_id].delay_s > stood_down_at for a in cancelled)
    assert max(a.sent_at_s for a in outcome.alerts) <= stood_down_at, "no alert after the stand-down"
    assert outcome.ran_for_nothing == 0


def test_stand_down_keeps_only_who_could_still_bring_an_aed_sooner_than_the_one_coming() -> None:
    people = [
        Person("runner", 0.3, 100, 100, (Fetch("far", 280),)),
        Person("direct", 0.3, 60, 50),
        Person("quick", 0.3, 90, 90, (Fetch("near", 150),)),
        Person("slow", 0.3, 200, 200, (Fetch("near", 290),)),
        Person("plain", 0.3, 120, 120),
    ]
    sent = [
        Sent("runner", 0, "accepted", 0.3, "fetch_aed", "far", 280, 10),  # the AED arrives at 290 s
        Sent("direct", 0, "accepted", 0.3, "cpr", None, 60, 12),
        *[Sent(r, 0, "pending", 0.3) for r in ("quick", "slow", "plain")],
    ]
    rules = CircleRules()
    # at 12 s "quick" could still bring an AED at 162 s; "slow" only at 302 s, "plain" none
    assert stand_down(sent, people, rules) == ["slow", "plain"]
    later = [*sent, Sent("late", 0, "declined", 0.3, answered_at_s=150)]
    assert stand_down(later, people, rules) == ["quick", "slow", "plain"]  # 150 + 150 s: too late now
    assert stand_down(sent[1:], people, rules) == [], "no AED coming yet: not enough"


def test_ours_does_not_widen_while_the_pool_at_its_reach_holds_people() -> None:
    near = crowd(40, 200, 3, mode="walk", prefix="near")  # all within the 300 s reach on foot
    far = [worker(f"far{i}", 1500, 40 * i, "ebike") for i in range(10)]  # 385 s: only at a wider reach
    scene = Scene.around(incident(), [*near, *far], [aed("a", 100)])
    outcome = play(
        OURS.circle(scene, estimates_of(scene)), answers(scene, DECLINE_FAST), horizon_s=900, wanted=2
    )
    assert len(outcome.alerts) == SETTINGS.alert_cap
    assert all(a.responder_id.startswith("near") for a in outcome.alerts)


def test_ours_widens_the_reach_on_its_ticks_only_when_the_pool_runs_dry() -> None:
    near = [worker("near0", 100), worker("near1", -120)]
    far = [worker(f"far{i}", 1500, 40 * i, "ebike") for i in range(6)]  # ETA 385 s
    scene = Scene.around(incident(), [*near, *far], [aed("a", 100)])
    outcome = play(OURS.circle(scene, estimates_of(scene)), answers(scene, SILENT), horizon_s=900, wanted=2)
    sent = {a.responder_id: a.sent_at_s for a in outcome.alerts}
    assert sent["near0"] == sent["near1"] == 0
    eta = {c.responder_id: MODEL.eta_s(c.distance_m, c.mode) for c in scene.responders}
    later = [r for r in sent if r.startswith("far")]
    assert later, "a dry pool must widen"
    interval, step = SETTINGS.escalation_interval_s, SETTINGS.escalation_step_s
    for r in later:
        ticks = sent[r] / interval
        assert ticks == int(ticks) and ticks >= 1, "escalation happens on the ticks"
        assert eta[r] <= min(SETTINGS.reach_s + ticks * step, SETTINGS.reach_max_s)
    assert min(sent[r] for r in later) == 2 * interval, "300 → 360 s holds nobody new, 420 s does"


def test_ours_dispatches_with_the_estimates_it_is_given() -> None:
    scene = random_scene(5, n_people=80, n_aeds=20, spread_m=1200)
    rare = {c.responder_id: 0.05 for c in scene.responders}
    keen = {c.responder_id: 0.9 for c in scene.responders}
    few, many = first_alerts(OURS, scene, keen), first_alerts(OURS, scene, rare)
    assert 0 < len(few) < len(many) <= SETTINGS.alert_cap
    assert {a.p_accept for a in many} == {0.05}


# --- outcomes -----------------------------------------------------------------------------------


def test_ran_for_nothing_counts_acceptors_beyond_the_first_arrivals_and_the_first_aed() -> None:
    def yes(rid: str, arrival: float, role: Role = "cpr") -> Sent:
        return Sent(rid, 0.0, "accepted", 0.3, role, "x" if role == "fetch_aed" else None, arrival, 0.0)

    sent = [yes("a", 100), yes("b", 120), yes("c", 130), yes("runner", 200, "fetch_aed"), yes("d", 250)]
    sent.append(Sent("e", 0.0, "cancelled", 0.3))
    assert ran_for_nothing(sent, 2) == 2  # c and d; the runner brought the first AED
    assert ran_for_nothing(sent[:2], 2) == 0


# --- answers: paired, and learned only from history -----------------------------------------------


def test_uniform_streams_are_independent_and_stream_zero_is_the_acceptance_draw() -> None:
    keys = np.arange(0, 3000, 3)
    zero, one = uniform_draws(3, 42, keys, 0), uniform_draws(3, 42, keys, 1)
    assert zero.tolist() == acceptance_draws(3, 42, keys).tolist()
    assert abs(np.corrcoef(zero, one)[0, 1]) < 0.1
    assert uniform_draws(3, 42, keys[::-1], 2)[::-1].tolist() == uniform_draws(3, 42, keys, 2).tolist()
    assert abs(uniform_draws(3, 42, keys, 2).mean() - 0.5) < 0.05


def test_answers_depend_only_on_seed_incident_worker_and_their_acceptance() -> None:
    keys = np.arange(200, dtype=np.int64)
    p = np.linspace(0.05, 0.9, 200)
    model = AnswerModel()
    every = answers_to(7, 3, keys, p, model)
    assert answers_to(7, 3, keys[50:60], p[50:60], model) == every[50:60]
    assert answers_to(8, 3, keys, p, model) != every
    delays = np.array([a.delay_s for a in answers_to(7, 3, np.arange(5000), np.full(5000, 0.3), model)])
    assert 18 < np.median(delays) < 22 and 0.15 < (delays > 30).mean() < 0.35


def test_acceptance_is_learned_from_history_and_converges_on_the_truth(small_demo: DemoCity) -> None:
    def learned(weeks: int) -> Workers:
        return learn_workers(
            small_demo.city, small_demo.responders, acceptance=0.3, seed=4, settings=SETTINGS,
            history_weeks=weeks,
        )  # fmt: skip

    few, many = learned(2), learned(200)
    night = np.array([p.shift == "night" for p in small_demo.responders])
    truth = few.propensity * np.where(night, AnswerModel().night_factor, 1.0)
    assert np.array_equal(few.propensity, many.propensity), "the same people, only more history"
    error_few, error_many = np.abs(few.learned - truth).mean(), np.abs(many.learned - truth).mean()
    assert error_few > 0.08, "two weeks cannot tell people apart well"
    assert error_many < error_few / 2
    assert not np.any(few.learned == truth)


def test_ours_is_given_the_learned_estimates_never_the_truth(small_demo: DemoCity) -> None:
    workers = learn_workers(
        small_demo.city, small_demo.responders, acceptance=0.35, seed=0, settings=SETTINGS
    )
    stream = incident_stream(small_demo.city, 30, 0, tz=TZ)
    comparison = compare(
        stream, small_demo.responders, small_demo.aeds, [OURS], workers,
        seed=0, acceptance=0.35, hours=HOURS, model=MODEL, wanted=2,
    )  # fmt: skip
    index = {p.responder_id: k for k, p in enumerate(small_demo.responders)}
    alerts = [a for o in comparison.outcomes["ours"] for a in o.alerts]
    assert len(alerts) > 50
    assert all(a.p_accept == workers.learned[index[a.responder_id]] for a in alerts)
    assert any(a.p_accept != workers.propensity[index[a.responder_id]] for a in alerts)


@pytest.fixture(scope="module")
def small_demo() -> DemoCity:
    return build_demo(0, responders=2000, aeds=5000)


@pytest.fixture(scope="module")
def small_study(small_demo: DemoCity) -> Comparison:
    return run_study(
        small_demo.city, small_demo.responders, small_demo.aeds,
        incidents=150, seed=0, acceptance=0.5, settings=SETTINGS,
    )  # fmt: skip


def test_every_policy_gets_the_same_answer_after_the_same_delay(small_study: Comparison) -> None:
    shared = 0
    keys = list(small_study.outcomes)
    for k in range(len(small_study.incidents)):
        for a, b in [(x, y) for x in keys for y in keys if x < y]:
            answered_a = {s.responder_id: s for s in small_study.outcomes[a][k].alerts if s.answered_at_s}
            answered_b = {s.responder_id: s for s in small_study.outcomes[b][k].alerts if s.answered_at_s}
            for rid in answered_a.keys() & answered_b.keys():
                sa, sb = answered_a[rid], answered_b[rid]
                assert sa.status == sb.status
                assert sa.answered_at_s - sa.sent_at_s == pytest.approx(sb.answered_at_s - sb.sent_at_s)
                shared += 1
    assert shared > 200, "policies must alert some of the same people for the check to mean anything"


def test_outcomes_follow_from_the_alerts(small_study: Comparison) -> None:
    for outcomes in small_study.outcomes.values():
        for o in outcomes:
            yes = [a for a in o.alerts if a.status == "accepted"]
            assert o.responder_s == min((a.arrival_s for a in yes), default=math.inf)
            assert o.aed_s == min((a.arrival_s for a in yes if a.role == "fetch_aed"), default=math.inf)
            assert all(a.arrival_s == a.answered_at_s + a.eta_s for a in yes)
    # no policy beats the ceiling
    reachable = np.array(small_study.ceiling_answered)
    for outcomes in small_study.outcomes.values():
        in_time = np.array([o.aed_s <= 300 for o in outcomes])
        assert not np.any(in_time & ~reachable)
    assert not np.any(reachable & ~np.array(small_study.ceiling)), "the answered bound is the tighter one"


# --- the study and its report -------------------------------------------------------------------


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


def test_the_whole_study_is_reproducible_for_a_seed(small_demo: DemoCity, small_study: Comparison) -> None:
    def run(seed: int) -> list[PolicyRow]:
        comparison = run_study(
            small_demo.city, small_demo.responders, small_demo.aeds,
            incidents=150, seed=seed, acceptance=0.5, settings=SETTINGS,
        )  # fmt: skip
        return summarise(comparison, small_demo.city.names)

    first = summarise(small_study, small_demo.city.names)
    assert run(0) == first
    assert run(1) != first
    city = [r for r in first if r.district == "whole city"]
    assert [r.policy for r in city] == ["A", "B", "hartslagnu", "hjertelober", "ours"]
    assert all(r.incidents == 150 for r in city)
    assert sum(r.incidents for r in first if r.policy == "ours" and r.district != "whole city") == 150
    # Every incident lies in one street of its own district: the street rows add up to the district's.
    by_street = summarise(small_study, small_demo.city.names, streets=street_names(small_demo.city))
    ours = [r for r in by_street if r.policy == "ours"]
    for district in small_demo.city.names:
        whole = next(r.incidents for r in ours if r.district == district and r.street is None)
        assert sum(r.incidents for r in ours if r.district == district and r.street) == whole


def test_policies_json_has_exactly_the_documented_shape(
    small_demo: DemoCity, small_study: Comparison
) -> None:
    streets = street_names(small_demo.city)
    rows = summarise(small_study, small_demo.city.names, streets=streets)
    data = json.loads(policies_json(rows, {"seed": 0, "acceptance": 0.5}))
    assert set(data) == {"parameters", "rows"} and data["parameters"] == {"seed": 0, "acceptance": 0.5}
    fields = {"policy", "district", "street", "incidents", "responder_5min", "aed_5min", "aed_8min",
              "median_alerts", "mean_alerts", "ran_for_nothing"}  # fmt: skip
    assert len(streets) == 74
    assert len(data["rows"]) == 5 * (1 + len(small_demo.city.names) + 74)
    for row in data["rows"]:
        assert set(row) == fields
        assert row["policy"] in {"A", "B", "hartslagnu", "hjertelober", "ours"}
        assert row["district"] in {"whole city", *small_demo.city.names}
        assert row["street"] is None or (row["district"], row["street"]) in streets
        assert isinstance(row["incidents"], int)
        for share in ("responder_5min", "aed_5min", "aed_8min"):
            assert row[share] is None or 0 <= row[share] <= 1
        assert row["incidents"] == 0 or row["mean_alerts"] >= 0 <= row["ran_for_nothing"]


def test_knob_variants_keep_the_standard_keys_and_vary_one_knob() -> None:
    standard = standard_policies(SETTINGS, MODEL)
    knobs = knob_variants(standard)
    keys = [k.policy.key for k in knobs]
    assert len(set(keys)) == len(keys)
    assert {p.key for p in standard} <= set(keys)
    levels = sorted(k.policy.rules.level for k in knobs if isinstance(k.policy, RescueCircle))
    assert SETTINGS.success_level in levels and len(levels) >= 4
    caps = {k.value: k.policy.cap for k in knobs if isinstance(k.policy, NearestWithRunners)}
    assert all(value == cap for value, cap in caps.items())


def test_the_goal_is_judged_against_the_best_other_policy() -> None:
    def row(policy: str, responder: float, aed5: float, median: float) -> PolicyRow:
        return PolicyRow(policy, policy, "whole city", 100, responder, aed5, aed5, median, median, 0.0)

    def judged(ours: PolicyRow) -> Goal:
        verdict = goal([row("B", 0.5, 0.30, 14), row("hjertelober", 0.6, 0.35, 14), ours])
        assert verdict is not None
        return verdict

    g = judged(row("ours", 0.6, 0.41, 7))
    assert g.best_other == "hjertelober" and g.aed_gain_pp == pytest.approx(6.0)
    assert g.met and not g.aimed
    assert not judged(row("ours", 0.59, 0.41, 7)).met, "worse on responder ≤ 5 min"
    assert not judged(row("ours", 0.6, 0.41, 15)).met, "more alerts than B"
    assert judged(row("ours", 0.6, 0.46, 7)).aimed
