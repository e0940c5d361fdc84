"""Coverage study: for every H3 cell of the city, how soon a responder and an AED can be at a patient.

Same reach model, same rules as dispatch (`dispatch.matching.coverage_of`, the dispatcher's verdict): the
fastest responder's `eta_s`, and the earliest `fetch_eta_s` of any (responder, open AED) pair, both
only within the reach. Computed exactly but without looping over cells: for one travel mode the
speed is shared, so the best fetch for a patient at p is min over AEDs a of (D(a) + d(a, p)), where
D(a) is the distance from a to its nearest responder of that mode — two nearest-source passes per
mode instead of responders × AEDs × cells. Cells carry their district's population evenly (the
finest the census gives), so shares of area and of people both come out per district.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import h3
import numpy as np
from numpy.typing import NDArray

from geo.cells import cell_boundary_geojson
from geo.reach import ReachModel
from simulator.city import City
from simulator.nearest import PointSet, min_total

Progress = Callable[[int, int], None]
CHUNK = 50_000


@dataclass(frozen=True)
class Grid:
    """The H3 cells of a city (centre inside a district), each with its district, its street (index
    into `City.streets`, -1 when the city knows no streets) and residents."""

    res: int
    cells: list[str]
    lat: NDArray[np.float64]
    lng: NDArray[np.float64]
    district: NDArray[np.int64]
    street: NDArray[np.int64]
    population: NDArray[np.float64]
    area_km2: NDArray[np.float64]

    def __len__(self) -> int:
        return len(self.cells)


def city_grid(city: City, res: int) -> Grid:
    """Cells whose centres lie in each place (a street, or a district without streets); the place's
    people spread evenly over them, the finest the census and the data give."""
    cells: list[str] = []
    district: list[int] = []
    street: list[int] = []
    population: list[float] = []
    streets_before = 0
    for i, d in enumerate(city.districts):
        for j, place in enumerate(d.places):
            mine = sorted(h3.geo_to_cells(place.geometry, res))
            cells += mine
            district += [i] * len(mine)
            street += [streets_before + j if d.streets else -1] * len(mine)
            population += [place.population / len(mine)] * len(mine) if mine else []
        streets_before += len(d.streets)
    centres = np.array([h3.cell_to_latlng(c) for c in cells]).reshape(-1, 2)
    return Grid(
        res,
        cells,
        centres[:, 0],
        centres[:, 1],
        np.array(district, dtype=np.int64),
        np.array(street, dtype=np.int64),
        np.array(population, dtype=np.float64),
        np.array([h3.cell_area(c, unit="km^2") for c in cells], dtype=np.float64),
    )


@dataclass(frozen=True)
class Snapshot:
    """Who is available and which AEDs are open, at one moment: plain arrays, any source."""

    resp_lat: NDArray[np.float64]
    resp_lng: NDArray[np.float64]
    resp_mode: NDArray[np.str_]
    aed_lat: NDArray[np.float64]
    aed_lng: NDArray[np.float64]

    @classmethod
    def of(cls, responders: Iterable[Any], aeds: Iterable[Any]) -> Snapshot:
        """From objects with `lat`, `lng`, `mode` (responders) and `lat`, `lng` (AEDs)."""
        rs, as_ = list(responders), list(aeds)
        return cls(
            np.array([r.lat for r in rs], dtype=np.float64),
            np.array([r.lng for r in rs], dtype=np.float64),
            np.array([str(r.mode) for r in rs], dtype=np.str_),
            np.array([a.lat for a in as_], dtype=np.float64),
            np.array([a.lng for a in as_], dtype=np.float64),
        )

    def modes(self) -> list[str]:
        return sorted(set(self.resp_mode.tolist()))

    def responders_of(self, mode: str) -> PointSet:
        mask = self.resp_mode == mode
        return PointSet.of(self.resp_lat[mask], self.resp_lng[mask])


@dataclass(frozen=True)
class CoverageResult:
    """Per-cell ETAs in seconds (NaN: nobody / no AED within the reach)."""

    grid: Grid
    reach_s: float
    responder_eta_s: NDArray[np.float64]
    aed_eta_s: NDArray[np.float64]


def aed_head_starts(snapshot: Snapshot, model: ReachModel, reach_s: float) -> dict[str, NDArray[np.float64]]:
    """Per mode, each AED's distance to its nearest responder of that mode (inf when too far to matter)."""
    aeds = PointSet.of(snapshot.aed_lat, snapshot.aed_lng)
    return {
        mode: min_total(
            aeds, snapshot.responders_of(mode), 0.0, model.max_distance_m(reach_s - model.aed_pickup_s, mode)
        )[0]
        for mode in snapshot.modes()
    }


def cell_etas(
    cells: PointSet,
    snapshot: Snapshot,
    head_starts: dict[str, NDArray[np.float64]],
    model: ReachModel,
    reach_s: float,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(responder ETA, AED-at-patient ETA) for each target point, NaN beyond the reach."""
    aeds = PointSet.of(snapshot.aed_lat, snapshot.aed_lng)
    resp = np.full(len(cells), np.inf)
    aed = np.full(len(cells), np.inf)
    for mode in snapshot.modes():
        speed = model.speed(mode)
        direct, _ = min_total(cells, snapshot.responders_of(mode), 0.0, model.max_distance_m(reach_s, mode))
        resp = np.minimum(resp, model.eta_s_np(direct, speed))
        limit = model.max_distance_m(reach_s - model.aed_pickup_s, mode)
        legs, _ = min_total(cells, aeds, head_starts[mode], limit)
        aed = np.minimum(aed, model.fetch_eta_s_np(legs, 0.0, speed))
    resp[resp > reach_s] = np.inf
    aed[aed > reach_s] = np.inf
    return np.where(np.isfinite(resp), resp, np.nan), np.where(np.isfinite(aed), aed, np.nan)


def study(
    grid: Grid, snapshot: Snapshot, model: ReachModel, reach_s: float, on_progress: Progress | None = None
) -> CoverageResult:
    """Run the study over the grid in chunks (progress after each)."""
    head_starts = aed_head_starts(snapshot, model, reach_s)
    resp = np.full(len(grid), np.nan)
    aed = np.full(len(grid), np.nan)
    for start in range(0, len(grid), CHUNK):
        part = slice(start, start + CHUNK)
        resp[part], aed[part] = cell_etas(
            PointSet.of(grid.lat[part], grid.lng[part]), snapshot, head_starts, model, reach_s
        )
        if on_progress:
            on_progress(min(start + CHUNK, len(grid)), len(grid))
    return CoverageResult(grid, reach_s, resp, aed)


def _shares(result: CoverageResult, mask: NDArray[np.bool_]) -> dict[str, float | None]:
    g = result.grid
    people, area = g.population[mask].sum(), g.area_km2[mask].sum()
    by_resp = mask & ~np.isnan(result.responder_eta_s)
    by_aed = mask & ~np.isnan(result.aed_eta_s)

    def share(part: float, whole: float) -> float | None:
        return round(float(part / whole), 4) if whole > 0 else None

    return {
        "population_share_responder": share(g.population[by_resp].sum(), people),
        "population_share_aed": share(g.population[by_aed].sum(), people),
        "area_share_responder": share(g.area_km2[by_resp].sum(), area),
        "area_share_aed": share(g.area_km2[by_aed].sum(), area),
        "cells": int(mask.sum()),
        "population": round(float(people)),
        "area_km2": round(float(area), 2),
    }


def summarise(result: CoverageResult, city: City) -> dict[str, Any]:
    """Shares of people and area within the reach, for a responder and for an AED: the whole city,
    each district, and each street (a street office asks about its own ground)."""
    g = result.grid
    return {
        "reach_s": result.reach_s,
        "resolution": g.res,
        **_shares(result, np.ones(len(g), dtype=bool)),
        "districts": [
            {"name": d.name, "name_zh": d.name_zh, **_shares(result, g.district == i)}
            for i, d in enumerate(city.districts)
        ],
        "streets": [
            {
                "name": s.name,
                "name_zh": s.name_zh,
                "district": city.districts[d].name,
                **_shares(result, g.street == k),
            }
            for k, (d, s) in enumerate(city.streets)
        ],
    }


def _eta(value: float) -> float | None:
    return None if np.isnan(value) else round(float(value), 1)


def cells_geojson(result: CoverageResult, city: City) -> dict[str, Any]:
    """One polygon per cell with its district, street (null: not known), residents and the two ETAs
    (null: not within reach)."""
    g = result.grid
    streets = [s.name for _, s in city.streets]
    features = [
        {
            "type": "Feature",
            "geometry": cell_boundary_geojson(cell),
            "properties": {
                "cell": cell,
                "district": city.districts[int(g.district[k])].name,
                "street": streets[g.street[k]] if g.street[k] >= 0 else None,
                "population": round(float(g.population[k]), 1),
                "responder_eta_s": _eta(result.responder_eta_s[k]),
                "aed_eta_s": _eta(result.aed_eta_s[k]),
            },
        }
        for k, cell in enumerate(g.cells)
    ]
    return {"type": "FeatureCollection", "features": features}
