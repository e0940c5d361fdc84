"""Studies hold a bounded number of (target, source) pairs at once, whatever the grid and the reach.

A whole-city, 900 s placement used to build every (site, cell) pair within reach in one go (6 GB
and more on the demo city); now pairs are walked in blocks of about `PAIR_BUDGET`. Here the budget
is made small and the study big enough that holding every pair would take several times the
bound, and tracemalloc (numpy reports its buffers to it) measures the peak.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from simulator import nearest, placement
from simulator.coverage import Snapshot, city_grid, study
from simulator.nearest import PointSet, pairs_within
from simulator.placement import place_aeds, place_recruits
from simulator.population import SimResponder
from tests.unit.test_coverage import MODEL, random_people, tiny_city

REACH = 900.0
BUDGET = 20_000


def _peak(work):  # type: ignore[no-untyped-def]
    tracemalloc.start()
    try:
        out = work()
        return out, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.fixture
def small_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nearest, "PAIR_BUDGET", BUDGET)
    monkeypatch.setattr(placement, "PAIR_BUDGET", BUDGET)


def test_study_and_placement_peak_stays_bounded_though_all_pairs_would_not(small_budget: None) -> None:
    walker = SimResponder("w", "park_security", 22.54, 114.05 - 0.014, "walk", "day")
    snapshot = Snapshot.of([walker], [])  # one walker in a corner: most of the city is left to place in
    grid = city_grid(tiny_city(), 11)
    points = PointSet.of(grid.lat, grid.lng)
    every = len(pairs_within(points, points, MODEL.max_distance_m(REACH, "ebike"))[0])
    all_at_once = every * 24  # the three int64/float64 columns alone, before any intermediate
    assert all_at_once > 50_000_000  # the check below means something: millions of pairs

    result, peak_study = _peak(lambda: study(grid, snapshot, MODEL, REACH))
    plan, peak_aeds = _peak(lambda: place_aeds(result, snapshot, MODEL, 5))
    recruits, peak_recruits = _peak(lambda: place_recruits(result, "ebike", MODEL, 5))
    bound = 8_000_000  # a block (~200 B a pair at BUDGET) plus the grid's own arrays
    assert max(peak_study, peak_aeds, peak_recruits) < bound < all_at_once
    assert plan.sites and recruits.sites


def test_blocked_placement_picks_the_same_sites_as_one_block_and_counts_each_cell_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    responders, aeds = random_people(3, 12, 3)  # walkers, runners and e-bikers: modes overlap
    snapshot = Snapshot.of(responders, aeds)
    result = study(city_grid(tiny_city(), 10), snapshot, MODEL, 360.0)
    whole = place_aeds(result, snapshot, MODEL, 6)
    monkeypatch.setattr(nearest, "PAIR_BUDGET", 500)
    monkeypatch.setattr(placement, "PAIR_BUDGET", 500)
    blocked = place_aeds(result, snapshot, MODEL, 6)
    assert blocked == whole and len(whole.sites) >= 3
    # gains are people newly covered: a cell two modes reach is one cell, so they add up to the curve
    total = float(result.grid.population.sum())
    shares = [whole.baseline_share, *whole.curve]
    for site, before, after in zip(whole.sites, shares, shares[1:], strict=False):
        assert site.gain_population == pytest.approx((after - before) * total, abs=0.0001 * total + 1)
    assert sum(s.gain_cells for s in whole.sites) == int(
        np.isnan(result.aed_eta_s).sum()
        - np.isnan(study(result.grid, _with(snapshot, whole), MODEL, 360.0).aed_eta_s).sum()
    )


def _with(snapshot: Snapshot, plan: placement.Placement) -> Snapshot:
    lat = np.concatenate([snapshot.aed_lat, [s.lat for s in plan.sites]])
    lng = np.concatenate([snapshot.aed_lng, [s.lng for s in plan.sites]])
    return Snapshot(snapshot.resp_lat, snapshot.resp_lng, snapshot.resp_mode, lat, lng)


@pytest.mark.parametrize("res", [7, 8, 9])
def test_the_size_estimate_made_before_a_study_is_close_to_its_grid(res: int) -> None:
    from simulator.shenzhen import demo_city
    from simulator.studies import estimate_cells

    city = demo_city()
    assert estimate_cells(city, res) == pytest.approx(len(city_grid(city, res)), rel=0.1)
