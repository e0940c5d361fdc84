"""Planner use cases over the stores: keep the city, take a snapshot, run a study or a what-if.

The numeric work is pure (`coverage`, `placement`); this module only gathers its inputs — the
districts from PostGIS, the fresh positions from the live store, the AEDs that are active, unblocked
and open at the study's moment from the registry — or, for a shift study, the programme's synthetic
workforce placed in the loaded city.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from geoalchemy2.shape import from_shape, to_shape
from shapely.geometry import MultiPolygon, mapping
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from aed_registry.availability import HoursPolicy
from aed_registry.store import AedStore
from geo.reach import ReachModel
from responders.store import LiveLocationStore
from simulator.city import City, District
from simulator.coverage import CoverageResult, Progress, Snapshot, city_grid, study
from simulator.models import DistrictRow
from simulator.population import CATEGORY_MIX, on_shift, synth_responders

Source = Literal["live", "shift"]


class NoCity(LookupError):
    """No districts are loaded yet: maps and studies have nothing to cover."""


async def save_city(session: AsyncSession, city: City) -> None:
    """Replace the stored districts with this city's (one city per deployment). The caller commits."""
    await session.execute(delete(DistrictRow))
    for district in city.districts:
        geometry = district.geometry
        if not isinstance(geometry, MultiPolygon):
            geometry = MultiPolygon([geometry])
        session.add(
            DistrictRow(
                city=city.name,
                name=district.name,
                population=district.population,
                boundary=from_shape(geometry, srid=4326),
            )
        )


async def load_city(session: AsyncSession) -> City:
    rows = (await session.execute(select(DistrictRow).order_by(DistrictRow.id))).scalars().all()
    if not rows:
        raise NoCity("city: no city loaded; run `dispatch sim load-demo` or `dispatch sim load-city FILE`")
    districts = tuple(District(r.name, int(r.population), to_shape(r.boundary)) for r in rows)
    return City(rows[0].city, districts)


def city_geojson(city: City) -> dict[str, Any]:
    """The districts as a FeatureCollection (WGS-84) with name, population and area."""
    features = [
        {
            "type": "Feature",
            "geometry": mapping(d.geometry),
            "properties": {"name": d.name, "population": d.population, "area_km2": round(d.area_km2, 2)},
        }
        for d in city.districts
    ]
    return {"type": "FeatureCollection", "name": city.name, "features": features}


@dataclass(frozen=True)
class StudyInputs:
    """What a study ran on, reported with its results so a planner can tell two runs apart."""

    snapshot: Snapshot
    at: datetime
    source: Source
    responders: int
    aeds: int


async def open_aeds(session: AsyncSession, hours: HoursPolicy, at: datetime) -> list[Any]:
    """AEDs a responder could take off the wall at `at`: active, unblocked, open."""
    return [a for a in await AedStore(session).all_unblocked() if hours.offered(a.opening_hours, at)]


async def gather(
    session: AsyncSession,
    store: LiveLocationStore,
    city: City,
    *,
    source: Source,
    at: datetime,
    hours: HoursPolicy,
    staleness_s: float,
    workforce: int = 8000,
    seed: int = 0,
) -> StudyInputs:
    """The study's inputs: fresh live positions, or the synthetic workforce on the shift at `at`."""
    if source == "live":
        oldest = time.time() - staleness_s
        people: Sequence[Any] = [p for p in await store.positions() if p.ts >= oldest]
    else:
        people = on_shift(synth_responders(city, workforce, seed), hours.local(at).hour)
    aeds = await open_aeds(session, hours, at)
    return StudyInputs(Snapshot.of(people, aeds), at, source, len(people), len(aeds))


def run_study(
    city: City,
    snapshot: Snapshot,
    model: ReachModel,
    res: int,
    reach_s: float,
    on_progress: Progress | None = None,
) -> CoverageResult:
    return study(city_grid(city, res), snapshot, model, reach_s, on_progress)


def recruit_mode(category: str | None) -> str:
    """The travel mode a new recruit of this category would most likely use."""
    ebike_share = CATEGORY_MIX.get(category or "", (0.0, 0.0))[1]
    return "ebike" if ebike_share >= 0.5 else "walk"
