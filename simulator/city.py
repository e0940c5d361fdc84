"""The city a planner studies: districts with their populations, as plain shapely geometry in WGS-84.

A `City` is either generated (`demo_city`: Voronoi districts around the real district centres of
Shenzhen, clipped to a plausible outline of about 2,000 km², weighted by the 2020 census) or loaded
from GeoJSON (`simulator.importers`). Everything downstream — synthetic people, coverage grids,
placement, policy runs — takes a `City`, so the demo and a real city go through the same code.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import shapely
from shapely.geometry import MultiPoint, MultiPolygon, Point, Polygon
from shapely.geometry.base import BaseGeometry
from shapely.ops import unary_union

from geo.distance import EARTH_RADIUS_M

# District centres (lat, lng) and 2020 census populations (thousands) from ../shared/data/README.md.
SHENZHEN_DISTRICTS: tuple[tuple[str, float, float, int], ...] = (
    ("Futian", 22.541, 114.055, 1553),
    ("Luohu", 22.548, 114.131, 1143),
    ("Nanshan", 22.533, 113.930, 1796),
    ("Bao'an", 22.555, 113.884, 4476),
    ("Longgang", 22.720, 114.247, 3979),
    ("Yantian", 22.557, 114.236, 215),
    ("Longhua", 22.697, 114.045, 2529),
    ("Pingshan", 22.690, 114.347, 551),
    ("Guangming", 22.749, 113.936, 1095),
    ("Dapeng", 22.593, 114.479, 156),
)
DEMO_AREA_KM2 = 2000.0


@dataclass(frozen=True)
class District:
    """A district: its name, residents, and outline ((Multi)Polygon, x = lng, y = lat, WGS-84)."""

    name: str
    population: int
    geometry: BaseGeometry

    @cached_property
    def area_km2(self) -> float:
        return area_km2(self.geometry)


@dataclass(frozen=True)
class City:
    """A named set of districts that tile the city (no overlaps)."""

    name: str
    districts: tuple[District, ...]

    @cached_property
    def outline(self) -> BaseGeometry:
        return unary_union([d.geometry for d in self.districts])

    @property
    def population(self) -> int:
        return sum(d.population for d in self.districts)

    @property
    def names(self) -> list[str]:
        return [d.name for d in self.districts]

    def district_index(
        self, lats: Sequence[float] | np.ndarray, lngs: Sequence[float] | np.ndarray
    ) -> np.ndarray:
        """Index of the district holding each point, -1 outside the city (vectorised)."""
        lat = np.asarray(lats, dtype=np.float64)
        lng = np.asarray(lngs, dtype=np.float64)
        out = np.full(lat.shape, -1, dtype=np.int64)
        for i, d in enumerate(self.districts):
            inside = shapely.contains_xy(d.geometry, lng, lat) & (out < 0)
            out[inside] = i
        return out


class LocalProjection:
    """Equirectangular metres around a reference point: exact enough over a city to shape polygons.

    Used only to build and measure geometry (areas, buffers, random points); distances that decide
    who is in reach always come from `geo.distance.haversine_m`.
    """

    def __init__(self, lat0: float, lng0: float) -> None:
        self.lat0, self.lng0 = lat0, lng0
        self._kx = math.radians(1) * EARTH_RADIUS_M * math.cos(math.radians(lat0))
        self._ky = math.radians(1) * EARTH_RADIUS_M

    def to_xy(self, lng: float | np.ndarray, lat: float | np.ndarray) -> tuple[float | np.ndarray, ...]:
        return (np.asarray(lng) - self.lng0) * self._kx, (np.asarray(lat) - self.lat0) * self._ky

    def to_lnglat(self, x: float | np.ndarray, y: float | np.ndarray) -> tuple[float | np.ndarray, ...]:
        return self.lng0 + np.asarray(x) / self._kx, self.lat0 + np.asarray(y) / self._ky

    def forward(self, geometry: BaseGeometry) -> BaseGeometry:
        """lng/lat → metres."""
        return shapely.transform(geometry, lambda xy: np.column_stack(self.to_xy(xy[:, 0], xy[:, 1])))

    def inverse(self, geometry: BaseGeometry) -> BaseGeometry:
        """Metres → lng/lat."""
        return shapely.transform(geometry, lambda xy: np.column_stack(self.to_lnglat(xy[:, 0], xy[:, 1])))


def area_km2(geometry: BaseGeometry) -> float:
    """Area of a lng/lat geometry in km², through a projection centred on it."""
    if geometry.is_empty:
        return 0.0
    c = geometry.centroid
    return LocalProjection(c.y, c.x).forward(geometry).area / 1e6


def _wobbly_outline(hull_m: BaseGeometry, area_m2: float, rng: np.random.Generator) -> Polygon:
    """A coastline-like blob around the centres: the buffered hull with smooth seeded radial noise,
    scaled so its area is `area_m2`."""
    base = hull_m.buffer(6000, quad_segs=32)
    cx, cy = base.centroid.x, base.centroid.y
    ring = np.asarray(base.exterior.coords)[:-1]
    angles = np.arctan2(ring[:, 1] - cy, ring[:, 0] - cx)
    noise = np.zeros(len(ring))
    for k in range(2, 9):  # a few low harmonics: bays and headlands, not spikes
        noise += rng.normal(0, 0.06 / k) * np.cos(k * angles + rng.uniform(0, 2 * np.pi))
    pts = np.column_stack([cx + (ring[:, 0] - cx) * (1 + noise), cy + (ring[:, 1] - cy) * (1 + noise)])
    blob = Polygon(pts).buffer(0)
    scale = math.sqrt(area_m2 / blob.area)
    return shapely.affinity.scale(blob, scale, scale, origin=(cx, cy))


def voronoi_districts(
    centres: Sequence[tuple[str, float, float, int]], outline: BaseGeometry, proj: LocalProjection
) -> tuple[District, ...]:
    """Districts as the Voronoi cells of their centres (in metres), clipped to the outline."""
    xs, ys = proj.to_xy(np.array([c[2] for c in centres]), np.array([c[1] for c in centres]))
    points = [Point(x, y) for x, y in zip(xs, ys, strict=True)]
    outline_m = proj.forward(outline)
    cells = shapely.voronoi_polygons(MultiPoint(points), extend_to=outline_m.buffer(10_000))
    districts = []
    for (name, _, _, pop), point in zip(centres, points, strict=True):
        cell = next(g for g in cells.geoms if g.contains(point))
        clipped = cell.intersection(outline_m)
        if isinstance(clipped, Polygon):
            clipped = MultiPolygon([clipped])
        districts.append(District(name, pop * 1000, proj.inverse(clipped)))
    return tuple(districts)


def demo_city(seed: int = 0, area: float = DEMO_AREA_KM2) -> City:
    """The generated Shenzhen-sized demo city: same seed, same city."""
    rng = np.random.default_rng(seed)
    lat0 = float(np.mean([c[1] for c in SHENZHEN_DISTRICTS]))
    lng0 = float(np.mean([c[2] for c in SHENZHEN_DISTRICTS]))
    proj = LocalProjection(lat0, lng0)
    xs, ys = proj.to_xy(
        np.array([c[2] for c in SHENZHEN_DISTRICTS]), np.array([c[1] for c in SHENZHEN_DISTRICTS])
    )
    hull = MultiPoint(list(zip(xs, ys, strict=True))).convex_hull
    outline_m = _wobbly_outline(hull, area * 1e6, rng)
    # Every centre must lie inside the outline, or its district would vanish: grow around them.
    outline_m = unary_union([outline_m, *[Point(x, y).buffer(2500) for x, y in zip(xs, ys, strict=True)]])
    return City("Demo Shenzhen", voronoi_districts(SHENZHEN_DISTRICTS, proj.inverse(outline_m), proj))
