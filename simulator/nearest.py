"""Exact "best source within a distance" for many targets at once, the engine of coverage studies.

Points go onto the unit sphere, where the straight-line chord grows monotonically with the great
circle distance; a k-d tree (scipy) finds every pair within the chord of the limit, and the exact
haversine of each pair decides. Nothing near the limit is lost to projection error, so a study
matches a brute-force scan to the metre (tests/unit/test_coverage.py checks it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.spatial import cKDTree

from geo.distance import EARTH_RADIUS_M, haversine_m_np

_SLACK_M = 1.0  # the tree is only a filter: query a metre wider, let haversine decide
# Pairs handled at once. Each pair costs ~200 B of intermediates (tree output, haversine, sort), so a
# block peaks near 200 MB whatever the grid or the reach: the whole-city, 900 s studies that once
# built every pair at once (6 GB and more) now walk the targets block by block.
PAIR_BUDGET = 1_000_000
_SAMPLE = 256


def unit_xyz(lats: ArrayLike, lngs: ArrayLike) -> NDArray[np.float64]:
    lat = np.radians(np.asarray(lats, dtype=np.float64))
    lng = np.radians(np.asarray(lngs, dtype=np.float64))
    return np.column_stack([np.cos(lat) * np.cos(lng), np.cos(lat) * np.sin(lng), np.sin(lat)])


def chord(distance_m: float) -> float:
    """Straight-line distance on the unit sphere for a great-circle distance in metres."""
    return 2.0 * np.sin(min(distance_m, np.pi * EARTH_RADIUS_M) / (2.0 * EARTH_RADIUS_M))


@dataclass(frozen=True)
class PointSet:
    """Points (lat, lng) with their k-d tree, built once and queried many times."""

    lat: NDArray[np.float64]
    lng: NDArray[np.float64]
    tree: cKDTree

    @classmethod
    def of(cls, lats: ArrayLike, lngs: ArrayLike) -> PointSet:
        lat = np.asarray(lats, dtype=np.float64).ravel()
        lng = np.asarray(lngs, dtype=np.float64).ravel()
        return cls(lat, lng, cKDTree(unit_xyz(lat, lng)))

    def __len__(self) -> int:
        return len(self.lat)

    def part(self, start: int, stop: int) -> PointSet:
        """Points [start, stop) with a tree of their own (a block of a long walk)."""
        return PointSet.of(self.lat[start:stop], self.lng[start:stop])


def block_size(targets: PointSet, sources: PointSet, radius_m: float, budget: int | None = None) -> int:
    """Targets per block so that one block's pairs within `radius_m` stay near `budget`.

    The densest of an even sample of targets sets the pace (times 1.5 for what the sample missed):
    a dense centre and an empty rim of the same city get the same, safe block.
    """
    n, budget = len(targets), PAIR_BUDGET if budget is None else budget
    if n == 0 or len(sources) == 0 or radius_m < 0:
        return max(n, 1)
    pick = np.linspace(0, n - 1, min(n, _SAMPLE)).astype(np.int64)
    xyz = unit_xyz(targets.lat[pick], targets.lng[pick])
    counts = sources.tree.query_ball_point(xyz, chord(radius_m + _SLACK_M), return_length=True)
    per_target = 1.5 * float(np.max(counts)) + 1.0
    return int(min(n, max(1, budget // per_target)))


def pairs_within(targets: PointSet, sources: PointSet, radius_m: float) -> tuple[NDArray, NDArray, NDArray]:
    """(target index, source index, exact metres) of every pair no farther apart than `radius_m`."""
    if len(targets) == 0 or len(sources) == 0 or radius_m < 0:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty, np.empty(0)
    found = targets.tree.sparse_distance_matrix(
        sources.tree, chord(radius_m + _SLACK_M), output_type="ndarray"
    )
    i, j = found["i"].astype(np.int64), found["j"].astype(np.int64)
    d = haversine_m_np(targets.lat[i], targets.lng[i], sources.lat[j], sources.lng[j])
    keep = d <= radius_m
    return i[keep], j[keep], d[keep]


def min_total(
    targets: PointSet, sources: PointSet, offset_m: ArrayLike, limit_m: float
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """For each target, min over sources of `offset[source] + distance` when that is ≤ `limit_m`.

    Returns (best total metres, inf where no source qualifies; index of that source, -1 where none).
    With offsets of zero this is the nearest source within a radius; with offsets it chains legs
    (responder → AED → patient). Ties go to the lowest source index, deterministically. Targets are
    taken in blocks of bounded pairs (`block_size`), so memory does not grow with grid × reach².
    """
    n = len(targets)
    best = np.full(n, np.inf)
    arg = np.full(n, -1, dtype=np.int64)
    offset = np.broadcast_to(np.asarray(offset_m, dtype=np.float64), (len(sources),))
    finite = offset[np.isfinite(offset)]
    if len(finite) == 0:
        return best, arg
    radius = limit_m - float(finite.min())
    step = block_size(targets, sources, radius)
    for start in range(0, n, step):
        block = targets if step >= n else targets.part(start, start + step)
        i, j, d = pairs_within(block, sources, radius)
        total = offset[j] + d
        keep = total <= limit_m
        i, j, total = i[keep], j[keep], total[keep]
        order = np.lexsort((j, total, i))
        i, j, total = i[order], j[order], total[order]
        first = np.ones(len(i), dtype=bool)
        first[1:] = i[1:] != i[:-1]
        best[start + i[first]] = total[first]
        arg[start + i[first]] = j[first]
    return best, arg
