"""Coverage studies against brute force and against dispatch's own verdict, on tiny hand-made cities."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from shapely.geometry import MultiPolygon, box

from dispatch.matching import AedSite, Candidate, coverage_of, people_in_reach
from geo.distance import haversine_m
from geo.reach import ReachModel
from simulator.city import City, District
from simulator.coverage import Snapshot, city_grid, study, summarise
from simulator.population import SimAed, SimResponder, synth_aeds, synth_responders
from simulator.shenzhen import demo_city

MODEL = ReachModel()
LAT, LNG = 22.54, 114.05


def tiny_city() -> City:
    """Two districts side by side, about 1.5 km x 1.5 km each, different populations."""
    west = box(LNG - 0.015, LAT - 0.007, LNG, LAT + 0.007)
    east = box(LNG, LAT - 0.007, LNG + 0.015, LAT + 0.007)
    return City(
        "tiny",
        (District("West", 30_000, MultiPolygon([west])), District("East", 10_000, MultiPolygon([east]))),
    )


def random_people(seed: int, n_resp: int, n_aed: int) -> tuple[list[SimResponder], list[SimAed]]:
    rng = np.random.default_rng(seed)
    responders = [
        SimResponder(
            f"r{i}",
            "sanitation_worker",
            LAT + rng.uniform(-0.012, 0.012),
            LNG + rng.uniform(-0.02, 0.02),
            str(rng.choice(["walk", "ebike", "run"])),
            "day",
        )
        for i in range(n_resp)
    ]
    aeds = [
        SimAed(f"a{i}", LAT + rng.uniform(-0.012, 0.012), LNG + rng.uniform(-0.02, 0.02), "24/7")
        for i in range(n_aed)
    ]
    return responders, aeds


def brute_force(lat: float, lng: float, responders: list[SimResponder], aeds: list[SimAed], reach: float):
    """Every responder, every (responder, AED) pair: the definition, written as plainly as possible."""
    direct = [MODEL.eta_s(haversine_m(r.lat, r.lng, lat, lng), r.mode) for r in responders]
    fetch = [
        MODEL.fetch_eta_s(
            haversine_m(r.lat, r.lng, a.lat, a.lng), haversine_m(a.lat, a.lng, lat, lng), r.mode
        )
        for r, a in itertools.product(responders, aeds)
    ]
    best = min((e for e in direct if e <= reach), default=math.nan)
    best_aed = min((e for e in fetch if e <= reach), default=math.nan)
    return best, best_aed


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_cell_etas_equal_brute_force_and_the_dispatch_verdict(seed: int) -> None:
    city = tiny_city()
    responders, aeds = random_people(seed, 12, 6)
    grid = city_grid(city, 10)
    assert len(grid) > 100
    result = study(grid, Snapshot.of(responders, aeds), MODEL, 240.0)
    covered = aed_covered = 0
    for k in range(len(grid)):
        lat, lng = grid.lat[k], grid.lng[k]
        want, want_aed = brute_force(lat, lng, responders, aeds, 240.0)
        np.testing.assert_allclose(result.responder_eta_s[k], want, rtol=0, atol=1e-6, equal_nan=True)
        np.testing.assert_allclose(result.aed_eta_s[k], want_aed, rtol=0, atol=1e-6, equal_nan=True)
        # The dispatcher's own verdict for a patient at the cell centre says the same thing.
        candidates = [
            Candidate(r.responder_id, r.lat, r.lng, r.mode, haversine_m(r.lat, r.lng, lat, lng))
            for r in responders
        ]
        sites = [AedSite(a.aed_id, a.lat, a.lng) for a in aeds]
        verdict = coverage_of(people_in_reach(lat, lng, candidates, sites, MODEL, 240.0, {}, prior=0.35))
        assert verdict.covered == (not math.isnan(want))
        if verdict.covered:
            assert abs(verdict.fastest_eta_s - result.responder_eta_s[k]) <= 0.05 + 1e-9
        if verdict.aed_eta_s is None:
            assert math.isnan(result.aed_eta_s[k])
        else:
            assert abs(verdict.aed_eta_s - result.aed_eta_s[k]) <= 0.05 + 1e-9
        covered += verdict.covered
        aed_covered += verdict.aed_eta_s is not None
    assert 0 < aed_covered < covered < len(grid)  # the scenario has all three kinds of cells


def test_summary_shares_weight_cells_by_their_districts_population() -> None:
    city = tiny_city()
    # One walker in the far west corner: only some western cells are covered, no AED anywhere.
    walker = SimResponder("w", "park_security", LAT, LNG - 0.014, "walk", "day")
    result = study(city_grid(city, 10), Snapshot.of([walker], []), MODEL, 300.0)
    summary = summarise(result, city)
    west, east = summary["districts"]
    assert east["population_share_responder"] == 0.0
    assert 0 < west["population_share_responder"] < 1
    # The city share is the population-weighted mean of the district shares.
    expected = (30_000 * west["population_share_responder"]) / 40_000
    assert summary["population_share_responder"] == pytest.approx(expected, abs=1e-3)
    assert summary["population_share_aed"] == 0.0
    assert summary["population"] == 40_000


def test_a_study_of_the_demo_city_is_deterministic_for_a_seed() -> None:
    def run(seed: int) -> tuple[np.ndarray, np.ndarray]:
        city = demo_city()
        snap = Snapshot.of(synth_responders(city, 800, seed), synth_aeds(city, 2000, seed))
        result = study(city_grid(city, 8), snap, MODEL, 300.0)
        return result.responder_eta_s, result.aed_eta_s

    a, b, c = run(5), run(5), run(6)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert len(a[0]) != len(c[0]) or not np.array_equal(a[0], c[0], equal_nan=True)
