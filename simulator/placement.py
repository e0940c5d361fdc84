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
from simulator.coverage import CoverageResult, Progress, Snapshot
from simulator.nearest import PAIR_BUDGET, PointSet, block_size, min_total, pairs_within


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


@dataclass(frozen=True)
class SiteReach:
    """Which open cells a new site would cover, asked one block of sites at a time.

    A rule (limit, head) covers cell p from site s when head[s] + d(s, p) ≤ limit: per travel mode
    for a new AED (head: the site's distance to its nearest responder of that mode), one rule with
    no head for a recruit. Only cells not yet covered are targets: covered ones can add nothing.
    Never holding every (site, cell) pair at once is what keeps a res-10, 900 s placement within a
    few hundred MB (all pairs at once took 6 GB and more); the greedy asks again for one site.
    """

    grid: PointSet
    open_cells: NDArray[np.int64]
    targets: PointSet
    rules: list[tuple[float, NDArray[np.float64]]]

    @classmethod
    def of(
        cls, grid: PointSet, covered: NDArray[np.bool_], rules: list[tuple[float, NDArray[np.float64]]]
    ) -> SiteReach:
        open_cells = np.flatnonzero(~covered)
        return cls(grid, open_cells, PointSet.of(grid.lat[open_cells], grid.lng[open_cells]), rules)

    @property
    def radius_m(self) -> float:
        return max((limit for limit, _ in self.rules), default=-1.0)

    def covers(self, start: int, stop: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """(site, cell) grid indices for sites [start, stop): each pair once, by site then cell."""
        n = len(self.grid)
        sites = self.grid.part(start, stop)
        keys: list[NDArray[np.int64]] = [np.empty(0, np.int64)]
        for limit, head in self.rules:
            i, j, d = pairs_within(sites, self.targets, limit)
            ok = head[start + i] + d <= limit
            keys.append((start + i[ok]) * n + self.open_cells[j[ok]])
        unique = np.unique(np.concatenate(keys))  # a cell reached by two modes counts once
        return unique // n, unique % n

    def block(self) -> int:
        """Sites per block: every rule (mode) makes its own pairs, so they share the budget."""
        return block_size(self.grid, self.targets, self.radius_m, PAIR_BUDGET // max(1, len(self.rules)))


def _aed_reach(
    grid: PointSet, covered: NDArray[np.bool_], snapshot: Snapshot, model: ReachModel, reach_s: float
) -> SiteReach:
    """A new AED at the site is fetched in time by a responder of some mode already there."""
    rules = []
    for mode in snapshot.modes():
        limit = model.max_distance_m(reach_s - model.aed_pickup_s, mode)
        head, _ = min_total(grid, snapshot.responders_of(mode), 0.0, limit)
        rules.append((limit, head))
    return SiteReach.of(grid, covered, rules)


def _recruit_reach(
    grid: PointSet, covered: NDArray[np.bool_], mode: str, model: ReachModel, reach_s: float
) -> SiteReach:
    return SiteReach.of(grid, covered, [(model.max_distance_m(reach_s, mode), np.zeros(len(grid)))])


def greedy(
    result: CoverageResult,
    reach: SiteReach,
    covered: NDArray[np.bool_],
    k: int,
    on_progress: Progress | None = None,
) -> Placement:
    """Lazy greedy maximal coverage: pick k sites, each adding the most not-yet-covered population.

    First gains come block by block (progress after each); a popped site's gain is asked again
    from its own neighbourhood, so no more than one block of pairs is ever held.
    """
    grid = result.grid
    pop = grid.population
    total = float(pop.sum()) or 1.0
    covered = covered.copy()

    def gain_of(cells: NDArray[np.int64]) -> float:
        return float(pop[cells[~covered[cells]]].sum())

    heap: list[tuple[float, int]] = []
    n = len(grid)
    step = reach.block() if len(reach.open_cells) else n
    for start in range(0, n if len(reach.open_cells) else 0, step):
        site_i, cell_j = reach.covers(start, min(start + step, n))
        bounds = np.searchsorted(site_i, np.arange(start, min(start + step, n) + 1))
        for s in range(start, min(start + step, n)):
            cells = cell_j[bounds[s - start] : bounds[s - start + 1]]
            if len(cells):
                heap.append((-gain_of(cells), s))
        if on_progress:
            on_progress(min(start + step, n), n)
    heapq.heapify(heap)
    sites: list[Site] = []
    curve: list[float] = []
    baseline = float(pop[covered].sum()) / total
    while heap and len(sites) < k:
        _, s = heapq.heappop(heap)
        cells = reach.covers(s, s + 1)[1]
        fresh = gain_of(cells)
        if heap and (-fresh, s) > heap[0]:  # its gain shrank: another site may be better now
            heapq.heappush(heap, (-fresh, s))
            continue
        if fresh <= 0:
            break
        new = cells[~covered[cells]]
        covered[new] = True
        sites.append(Site(float(grid.lat[s]), float(grid.lng[s]), grid.cells[s], round(fresh), len(new)))
        curve.append(round(float(pop[covered].sum()) / total, 4))
    return Placement(sites, round(baseline, 4), curve)


def place_aeds(
    result: CoverageResult,
    snapshot: Snapshot,
    model: ReachModel,
    k: int,
    on_progress: Progress | None = None,
) -> Placement:
    """K new AEDs where they bring an AED to the most people not yet reached by one."""
    points = PointSet.of(result.grid.lat, result.grid.lng)
    covered = ~np.isnan(result.aed_eta_s)
    reach = _aed_reach(points, covered, snapshot, model, result.reach_s)
    return greedy(result, reach, covered, k, on_progress)


def place_recruits(
    result: CoverageResult, mode: str, model: ReachModel, k: int, on_progress: Progress | None = None
) -> Placement:
    """K new responders (travelling by `mode`) where they reach the most people nobody reaches yet."""
    points = PointSet.of(result.grid.lat, result.grid.lng)
    covered = ~np.isnan(result.responder_eta_s)
    reach = _recruit_reach(points, covered, mode, model, result.reach_s)
    return greedy(result, reach, covered, k, on_progress)
