"""The city a planner studies: districts (and their streets) with residents, as shapely geometry in WGS-84.

A `City` is either the demo (`simulator.shenzhen`: Shenzhen's real districts and 74 streets, people by
the 2020 census) or loaded from GeoJSON (`simulator.importers`: districts only). Everything
downstream — synthetic people, coverage grids, placement, policy runs — takes a `City`, so the demo
and a real city go through the same code.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry
from shapely.ops import unary_union

from geo.distance import EARTH_RADIUS_M


@dataclass(frozen=True)
class Street:
    """A sub-district (街道): the level below a district, where street teams and communities work.
    `name` is the pinyin one ("Nanyuan"), `name_zh` the Chinese ("南园街道") for a Chinese page."""

    name: str
    population: int
    geometry: BaseGeometry
    name_zh: str = ""

    @cached_property
    def area_km2(self) -> float:
        return area_km2(self.geometry)


@dataclass(frozen=True)
class District:
    """A district: its name, residents, and outline ((Multi)Polygon, x = lng, y = lat, WGS-84);
    `streets`, when the city knows them, tile the outline and share its residents."""

    name: str
    population: int
    geometry: BaseGeometry
    name_zh: str = ""
    streets: tuple[Street, ...] = ()

    @cached_property
    def area_km2(self) -> float:
        return area_km2(self.geometry)

    @property
    def places(self) -> tuple[Place, ...]:
        """Where its people live, as finely as the city knows: its streets, or itself."""
        return self.streets or (self,)


Place = Street | District  # where people are placed: a street, or a district known only as a whole


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

    @property
    def streets(self) -> list[tuple[int, Street]]:
        """Every street with the index of its district, in the districts' order."""
        return [(i, s) for i, d in enumerate(self.districts) for s in d.streets]

    def district_index(
        self, lats: Sequence[float] | np.ndarray, lngs: Sequence[float] | np.ndarray
    ) -> np.ndarray:
        """Index of the district holding each point, -1 outside the city (vectorised)."""
        return _index_of([d.geometry for d in self.districts], lats, lngs)

    def street_index(
        self, lats: Sequence[float] | np.ndarray, lngs: Sequence[float] | np.ndarray
    ) -> np.ndarray:
        """Index into `streets` of the street holding each point, -1 outside every street."""
        return _index_of([s.geometry for _, s in self.streets], lats, lngs)


def _index_of(
    areas: Sequence[BaseGeometry], lats: Sequence[float] | np.ndarray, lngs: Sequence[float] | np.ndarray
) -> np.ndarray:
    """Index of the first area holding each point, -1 outside them all (vectorised)."""
    lat = np.asarray(lats, dtype=np.float64)
    lng = np.asarray(lngs, dtype=np.float64)
    out = np.full(lat.shape, -1, dtype=np.int64)
    for i, area in enumerate(areas):
        inside = shapely.contains_xy(area, lng, lat) & (out < 0)
        out[inside] = i
    return out


def share_out(total: int, weights: Sequence[float]) -> list[int]:
    """`total` whole people split in proportion to `weights`, summing exactly to `total` (largest
    remainder: a district's census figure must survive being spread over its streets)."""
    w = np.asarray(weights, dtype=np.float64)
    if len(w) == 0 or w.sum() <= 0:
        raise ValueError("weights: need at least one positive weight")
    exact = total * w / w.sum()
    whole = np.floor(exact).astype(np.int64)
    short = total - int(whole.sum())
    whole[np.argsort(-(exact - whole), kind="stable")[:short]] += 1
    return whole.tolist()


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
