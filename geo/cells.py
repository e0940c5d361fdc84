"""H3 cells: the cover of a search circle, and the cells of a district.

Why the cover is safe: a point p lies in its cell c0, at most one circumradius (= the edge length
e_max) from c0's centre; a point q within r of p lies in some cell cq, at most e_max from cq's
centre. So the centres of c0 and cq are at most r + 2·e_max apart. In a hexagonal grid the nearest
centres k rings away are 1.5·k·e_min apart (the mid-side of ring k), hence cq lies within
k = ceil((r + 2·e_max) / (1.5·e_min)) rings of c0. We use the real edge lengths of the cells around
p (H3 cells vary by up to ~2x across the globe), shrink e_min by a margin for the distortion across
the disk itself, and add one ring: a responder inside the reach is never missed at a cell edge.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import h3

_DISTORTION_MARGIN = 0.9  # edges within a few km differ by far less than 10 %


def cell_of(lat: float, lng: float, res: int) -> str:
    return h3.latlng_to_cell(lat, lng, res)


@lru_cache(maxsize=65536)
def _edge_extremes_m(cell: str) -> tuple[float, float]:
    """Shortest and longest edge (metres) of a cell and its immediate neighbours."""
    lengths = [
        h3.edge_length(edge, unit="m")
        for c in h3.grid_disk(cell, 1)
        for edge in h3.origin_to_directed_edges(c)
    ]
    return min(lengths), max(lengths)


def cover_k(lat: float, lng: float, radius_m: float, res: int) -> int:
    """Rings of `grid_disk` around the point's cell that contain every point within `radius_m`."""
    e_min, e_max = _edge_extremes_m(cell_of(lat, lng, res))
    return math.ceil((radius_m + 2 * e_max) / (1.5 * e_min * _DISTORTION_MARGIN)) + 1


def cover_cells(lat: float, lng: float, radius_m: float, res: int) -> set[str]:
    """Cells at `res` guaranteed to contain every point within `radius_m` of (lat, lng)."""
    return set(h3.grid_disk(cell_of(lat, lng, res), cover_k(lat, lng, radius_m, res)))


def polygon_cells(geometry: Any, res: int) -> set[str]:
    """Cells whose centres lie inside a shapely (Multi)Polygon (H3's polyfill semantics).

    Centre containment is what a planner wants: each cell is counted once, in the district that
    holds most of it, and the cells of adjacent districts tile the city without overlap.
    """
    return set(h3.geo_to_cells(geometry, res))


def cell_boundary_geojson(cell: str) -> dict[str, Any]:
    """The cell as a GeoJSON Polygon (lng, lat order, closed ring)."""
    ring = [[lng, lat] for lat, lng in h3.cell_to_boundary(cell)]
    ring.append(ring[0])
    return {"type": "Polygon", "coordinates": [ring]}


def cell_center(cell: str) -> tuple[float, float]:
    """(lat, lng) of the cell's centre."""
    lat, lng = h3.cell_to_latlng(cell)
    return lat, lng
