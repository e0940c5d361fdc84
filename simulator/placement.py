"""What-if planning: where K new AEDs, or K new recruits, add the most people within the reach.

Greedy maximal coverage over candidate sites (the grid's cell centres). For each site we know which
not-yet-covered cells it would cover; the greedy pick (largest population gain, then smallest site
index) is within 1 - 1/e of the best possible set, and because coverage is submodular the gains it
reports never increase — the marginal-gain curve a planner reads to decide how many to buy.

- A new AED at s covers a patient cell p when some responder already there can fetch it in time:
  min over modes of fetch_eta(D_m(s) + d(s, p)) ≤ reach, with D_m(s) the distance from s to its
  nearest responder of mode m (the same chaining as the coverage study).
- A new recruit at s (travel mode of the category) covers p when eta(d(s, p)) ≤ reach.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from geo.reach import ReachModel
from simulator.coverage import CoverageResult, Snapshot
from simulator.nearest import PointSet, min_total, pairs_within


@dataclass(frozen=True, slots=True)
class Site:
    """A proposed site, in the order chosen, with what it adds."""

    lat: float
    lng: float
    cell: str
    gain_population: int
    gain_cells: int


@dataclass(frozen=True)
class Placement:
    sites: list[Site]
    # Share of the city's population covered after each added site (the curve starts before any).
    baseline_share: float
    curve: list[float]


def _aed_reach(grid_points: PointSet, snapshot: Snapshot, model: ReachModel, reach_s: float) -> tuple:
    """(site index, cell index) pairs where a new AED at the site would be fetched in time."""
    sites_i: list[NDArray[np.int64]] = []
    cells_j: list[NDArray[np.int64]] = []
    for mode in snapshot.modes():
        limit = model.max_distance_m(reach_s - model.aed_pickup_s, mode)
        head, _ = min_total(grid_points, snapshot.responders_of(mode), 0.0, limit)
        i, j, d = pairs_within(grid_points, grid_points, limit)
        ok = head[i] + d <= limit
        sites_i.append(i[ok])
        cells_j.append(j[ok])
    return np.concatenate(sites_i or [np.empty(0, np.int64)]), np.concatenate(
        cells_j or [np.empty(0, np.int64)]
    )


def _recruit_reach(grid_points: PointSet, mode: str, model: ReachModel, reach_s: float) -> tuple:
    i, j, _ = pairs_within(grid_points, grid_points, model.max_distance_m(reach_s, mode))
    return i, j


def greedy(
    result: CoverageResult,
    site_idx: NDArray[np.int64],
    cell_idx: NDArray[np.int64],
    covered: NDArray[np.bool_],
    k: int,
) -> Placement:
    """Lazy greedy maximal coverage: pick k sites, each adding the most not-yet-covered population."""
    grid = result.grid
    pop = grid.population
    total = float(pop.sum()) or 1.0
    covered = covered.copy()
    order = np.lexsort((cell_idx, site_idx))
    site_idx, cell_idx = site_idx[order], cell_idx[order]
    starts = np.searchsorted(site_idx, np.arange(len(grid) + 1))

    def gain(s: int) -> float:
        cells = cell_idx[starts[s] : starts[s + 1]]
        return float(pop[cells[~covered[cells]]].sum())

    heap = [(-gain(s), s) for s in range(len(grid)) if starts[s + 1] > starts[s]]
    heapq.heapify(heap)
    sites: list[Site] = []
    curve: list[float] = []
    baseline = float(pop[covered].sum()) / total
    while heap and len(sites) < k:
        _, s = heapq.heappop(heap)
        fresh = gain(s)
        if heap and (-fresh, s) > heap[0]:  # its gain shrank: another site may be better now
            heapq.heappush(heap, (-fresh, s))
            continue
        if fresh <= 0:
            break
        cells = cell_idx[starts[s] : starts[s + 1]]
        new = cells[~covered[cells]]
        covered[new] = True
        sites.append(Site(float(grid.lat[s]), float(grid.lng[s]), grid.cells[s], round(fresh), len(new)))
        curve.append(round(float(pop[covered].sum()) / total, 4))
    return Placement(sites, round(baseline, 4), curve)


def place_aeds(result: CoverageResult, snapshot: Snapshot, model: ReachModel, k: int) -> Placement:
    """K new AEDs where they bring an AED to the most people not yet reached by one."""
    points = PointSet.of(result.grid.lat, result.grid.lng)
    sites, cells = _aed_reach(points, snapshot, model, result.reach_s)
    return greedy(result, sites, cells, ~np.isnan(result.aed_eta_s), k)


def place_recruits(result: CoverageResult, mode: str, model: ReachModel, k: int) -> Placement:
    """K new responders (travelling by `mode`) where they reach the most people nobody reaches yet."""
    points = PointSet.of(result.grid.lat, result.grid.lng)
    sites, cells = _recruit_reach(points, mode, model, result.reach_s)
    return greedy(result, sites, cells, ~np.isnan(result.responder_eta_s), k)
