"""H3 cells: the cover of a search circle, and the cells of a district.

Why the cover is safe: a point p lies in its cell c0, at most one circumradius (= the edge length
e_max) from c0's centre; a point q within r of p lies in some cell cq, at most e_max from cq's
centre. So the centres of c0 and cq are at most r + 2·e_max apart. In a hexagonal grid the nearest
centres k rings away are 1.5·k·e_min apart (the mid-side of ring k), hence cq lies within
k = ceil((r + 2·e_max) / (1.5·e_min)) rings of c0. We use the real edge lengths of the cells around
p (H3 cells vary by up to ~2x across the globe), shrink e_min by a margin for the distortion across
the disk itself, and add one ring: a responder inside the reach is never missed at a cell edge.

The ring disk is a hexagon of cells around a round search circle, about three times the circle's
area at dispatch radii, and every cell read costs the live store time. So the disk is then trimmed:
a cell whose centre is farther from p than r plus a circumradius (the farthest boundary vertex of
p's cell, widened by the same distortion margin and a pad for bulging geodesic edges)
cannot hold a point within r of p, and is dropped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import h3
import h3.api.basic_int as h3_int
import h3.api.numpy_int as h3_np
import numpy as np

from core.hexdigits import hex_digits
from geo.distance import haversine_m, haversine_m_np

_DISTORTION_MARGIN = 0.9  # edges within a few km differ by far less than 10 %
CITY_CELLS_MAX = 1 << 19  # ~12 MB of centres: a 50,000 km² region at res 9
_CIRCUMRADIUS_PAD = 1.01  # geodesic edges bulge past the vertex-to-vertex chord by far less than 1 %


def cell_of(lat: float, lng: float, res: int) -> str:
    return h3.latlng_to_cell(lat, lng, res)


@lru_cache(maxsize=65536)
def _edge_extremes_m(cell: str) -> tuple[float, float]:
    """Shortest and longest edge (metres) of the cell. Its neighbours' edges differ from these by
    far less than the distortion margin that already covers every cell of the disk (which reaches
    kilometres further than the neighbours do), so measuring 6 edges instead of 42 loses nothing
    and saves ~0.2 ms on every incident in a cell not seen before."""
    lengths = [h3.edge_length(edge, unit="m") for edge in h3.origin_to_directed_edges(cell)]
    return min(lengths), max(lengths)


def cover_k(lat: float, lng: float, radius_m: float, res: int) -> int:
    """Rings of `grid_disk` around the point's cell that contain every point within `radius_m`."""
    e_min, e_max = _edge_extremes_m(cell_of(lat, lng, res))
    return math.ceil((radius_m + 2 * e_max) / (1.5 * e_min * _DISTORTION_MARGIN)) + 1


@lru_cache(maxsize=65536)
def _circumradius_m(cell: str) -> float:
    """The farthest boundary vertex of a cell from its centre (metres)."""
    lat, lng = h3.cell_to_latlng(cell)
    return max(haversine_m(lat, lng, v_lat, v_lng) for v_lat, v_lng in h3.cell_to_boundary(cell))


class _Centres:
    """Cell centres, remembered: a city has tens of thousands of cells at dispatch resolutions and
    every query asks for hundreds of them. The city's cells (worked out at start-up) sit in sorted
    arrays, so a cover looks all of its cells up at once with `searchsorted`; any other cell is
    computed once and kept in a bounded dictionary."""

    EXTRA_MAX = 1 << 17

    def __init__(self) -> None:
        self.ids = np.empty(0, dtype=np.uint64)
        self.lat = np.empty(0)
        self.lng = np.empty(0)
        self.extra: dict[int, tuple[float, float]] = {}

    def load(self, cells: np.ndarray) -> None:
        """Remember these cells' centres too (cells of several resolutions may be kept)."""
        new = np.setdiff1d(cells.astype(np.uint64), self.ids)
        centres = np.array([h3_int.cell_to_latlng(c) for c in new.tolist()]).reshape(-1, 2)
        ids = np.concatenate([self.ids, new])
        order = np.argsort(ids)
        self.ids = ids[order]
        self.lat = np.concatenate([self.lat, centres[:, 0]])[order]
        self.lng = np.concatenate([self.lng, centres[:, 1]])[order]

    def of(self, cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(lats, lngs) of the cells' centres."""
        if len(self.ids):
            at = np.minimum(np.searchsorted(self.ids, cells), len(self.ids) - 1)
            known = self.ids[at] == cells
            lats, lngs = self.lat[at], self.lng[at]
        else:
            known = np.zeros(len(cells), dtype=bool)
            lats, lngs = np.empty(len(cells)), np.empty(len(cells))
        for i in np.flatnonzero(~known).tolist():
            cell = int(cells[i])
            centre = self.extra.get(cell)
            if centre is None:
                if len(self.extra) >= self.EXTRA_MAX:
                    self.extra.clear()
                centre = self.extra[cell] = h3_int.cell_to_latlng(cell)
            lats[i], lngs[i] = centre
        return lats, lngs


_CENTRES = _Centres()


def remember_centres_within(
    min_lat: float, min_lng: float, max_lat: float, max_lng: float, res: int, margin_m: float = 5000.0
) -> int:
    """Work out the centre of every cell over a box (a city, widened by `margin_m`) ahead of time.

    Called at start-up for the city's districts: otherwise the first incidents after a restart pay
    an H3 call for every cell of their cover (~1 ms at dispatch radii) until the cache is warm.
    Returns how many cells; 0 when the box holds more than `CITY_CELLS_MAX` (nothing is done).
    """
    dlat = margin_m / 111_195.0
    dlng = dlat / max(0.01, math.cos(math.radians(max(abs(min_lat), abs(max_lat)))))
    south, north = max(-89.0, min_lat - dlat), min(89.0, max_lat + dlat)
    west, east = max(-180.0, min_lng - dlng), min(180.0, max_lng + dlng)
    area_m2 = (north - south) * 111_195.0 * (east - west) * 111_195.0 * math.cos(math.radians(south))
    if area_m2 / h3.average_hexagon_area(res, unit="m^2") > CITY_CELLS_MAX:
        return 0
    box = h3.LatLngPoly([(south, west), (south, east), (north, east), (north, west)])
    cells = np.array([h3.str_to_int(c) for c in h3.h3shape_to_cells(box, res)], dtype=np.uint64)
    _CENTRES.load(cells)
    return len(cells)


def cover_ids(lat: float, lng: float, radius_m: float, res: int) -> np.ndarray:
    """Cells at `res` guaranteed to contain every point within `radius_m` of (lat, lng), as
    integer H3 ids (uint64): the live store turns them into keys without a string per cell."""
    origin = cell_of(lat, lng, res)
    # Integer cell ids through the walk: several times faster than H3's string API on ~300 cells.
    disk = h3_np.grid_disk(h3.str_to_int(origin), cover_k(lat, lng, radius_m, res))
    # Cells across the disk differ in size by less than the margin the ring count already relies on.
    reach = radius_m + _circumradius_m(origin) / _DISTORTION_MARGIN * _CIRCUMRADIUS_PAD + 1.0
    lats, lngs = _CENTRES.of(disk)
    return disk[haversine_m_np(lat, lng, lats, lngs) <= reach]


_RES_SHIFT, _RES_MASK = 52, np.uint64(0xF << 52)  # an H3 id's resolution field
_DIGIT_BITS = 3  # each resolution's digit; 7 (all ones) marks a digit finer than the cell's own


def parents_of(ids: np.ndarray, res: int) -> np.ndarray:
    """Each cell's ancestor at the coarser (or equal) `res`, as integer ids (uint64), by the bits
    of the H3 index: the resolution field set to `res`, the finer digits set to 7. The same as
    `h3.cell_to_parent` cell by cell (tested), for a whole cover or gateway batch at once."""
    unused = sum(7 << (_DIGIT_BITS * (15 - d)) for d in range(res + 1, 16))
    ids = np.asarray(ids, dtype=np.uint64)
    return (ids & ~_RES_MASK) | np.uint64(res << _RES_SHIFT) | np.uint64(unused)


def page_cover_ids(lat: float, lng: float, radius_m: float, res: int, page_res: int) -> np.ndarray:
    """The ancestors at `page_res` (integer ids) of every cell at `res` holding a point within
    `radius_m` of (lat, lng): the pages a query of the live store reads, worked out at the pages'
    own resolution (a 2 km disk: ~170 cells walked at res 8, ~470 at res 9).

    Why it is safe: one resolution up, a cell's centre always lies inside its parent (H3 nests
    them; tested). A point q within r of p lies within one circumradius R(res) of its cell's
    centre, which lies in the parent, whose own centre lies within R(res - 1) of it and inside the
    grandparent, and so on: q's page contains a point within r + R(res) + … + R(page_res + 1) of p,
    and the cover of that wider disk at `page_res` holds every cell containing such a point.
    """
    overhang = sum(_circumradius_m(cell_of(lat, lng, k)) for k in range(page_res + 1, res + 1))
    return cover_ids(lat, lng, radius_m + overhang / _DISTORTION_MARGIN * _CIRCUMRADIUS_PAD, page_res)


def cover_cells(lat: float, lng: float, radius_m: float, res: int) -> set[str]:
    """`cover_ids` as H3's hex strings."""
    return {f"{c:x}" for c in cover_ids(lat, lng, radius_m, res).tolist()}


def cells_of(lats: np.ndarray, lngs: np.ndarray, res: int) -> np.ndarray:
    """The cell of each point as an integer id (uint64): H3's integer API, half the time of its
    strings, for the fixes of a gateway batch."""
    points = zip(lats.tolist(), lngs.tolist(), strict=True)
    return np.array([h3_int.latlng_to_cell(lat, lng, res) for lat, lng in points], dtype=np.uint64)


def _hex_ids(ids: np.ndarray) -> np.ndarray:
    """Cells' 15-character hex strings as rows of ASCII bytes, shape (n, 15) uint8. A cell's 64-bit
    id starts with a zero digit (reserved bit and mode 1), which its string omits."""
    digits = hex_digits(np.asarray(ids, dtype=">u8").view(np.uint8).reshape(len(ids), 8))
    return digits[:, 1:]


def cell_ids(texts: Sequence[str]) -> np.ndarray:
    """Cells' hex strings as integer ids (uint64), the form `cell_keys` and `cell_texts` take."""
    return np.array([int(t, 16) for t in texts], dtype=np.uint64)


def cell_texts(ids: np.ndarray) -> np.ndarray:
    """Cells' hex strings as a numpy bytes array (`S15`), formatted all at once."""
    return np.ascontiguousarray(_hex_ids(ids)).view("S15").ravel()


def cell_keys(prefix: str, ids: np.ndarray) -> list[bytes]:
    """`prefix` + each cell's hex string, as bytes keys: numpy formats them all at once."""
    head = np.frombuffer(prefix.encode(), dtype=np.uint8)
    keys = np.empty((len(ids), len(head) + 15), dtype=np.uint8)
    keys[:, : len(head)] = head
    keys[:, len(head) :] = _hex_ids(ids)
    return keys.view(f"S{keys.shape[1]}").ravel().tolist()


def tagged_cell_keys(base: str, tags: np.ndarray, infix: str, ids: np.ndarray) -> list[bytes]:
    """`base{<tag cell>}<infix><cell>` for each pair of cells (hex strings), as bytes keys formatted
    by numpy all at once: a key carrying a coarser cell as its Redis Cluster hash tag."""
    head = np.frombuffer((base + "{").encode(), dtype=np.uint8)
    middle = np.frombuffer(("}" + infix).encode(), dtype=np.uint8)
    at = len(head) + 15
    keys = np.empty((len(ids), at + len(middle) + 15), dtype=np.uint8)
    keys[:, : len(head)] = head
    keys[:, len(head) : at] = _hex_ids(tags)
    keys[:, at : at + len(middle)] = middle
    keys[:, at + len(middle) :] = _hex_ids(ids)
    return keys.view(f"S{keys.shape[1]}").ravel().tolist()


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


def box_area_cells(south: float, west: float, north: float, east: float, res: int) -> float:
    """About how many cells at `res` a box (WGS-84 degrees) covers: its area over a cell's. Cheap,
    so an absurd map view is refused before any cell of it is worked out."""
    mid = math.radians((south + north) / 2)
    area_m2 = (north - south) * 111_195.0 * (east - west) * 111_195.0 * math.cos(mid)
    return area_m2 / h3.average_hexagon_area(res, unit="m^2")


def box_cells(south: float, west: float, north: float, east: float, res: int) -> np.ndarray:
    """Every cell at `res` (integer ids, uint64) that overlaps the box, so a position anywhere in it
    lies in one of them: the pages a map's view reads. A box with no area still gets the cell of
    its corner."""
    box = h3.LatLngPoly([(south, west), (south, east), (north, east), (north, west)])
    cells = {h3.str_to_int(c) for c in h3.h3shape_to_cells_experimental(box, res, contain="overlap")}
    cells.add(h3.str_to_int(cell_of(south, west, res)))
    return np.array(sorted(cells), dtype=np.uint64)
