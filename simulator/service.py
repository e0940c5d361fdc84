"""Planner use cases over the stores: keep the city, take a snapshot, run a study or a what-if.

The numeric work is pure (`coverage`, `placement`); this module only gathers its inputs — the
districts and streets from PostGIS, the fresh positions from the live store, the AEDs that are
active, unblocked and open at the study's moment from the registry — or, for a shift study, the
programme's synthetic workforce placed in the loaded city.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from geoalchemy2.shape import from_shape, to_shape
from shapely.geometry import MultiPolygon, mapping
from shapely.geometry.base import BaseGeometry
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from aed_registry.availability import HoursPolicy
from aed_registry.store import AedStore
from geo.reach import ReachModel
from responders.store import LiveLocationStore
from simulator.city import City, District, Street
from simulator.coverage import CoverageResult, Progress, Snapshot, city_grid, study
from simulator.models import DistrictRow, StreetRow
from simulator.population import CATEGORY_MIX, on_shift, synth_responders

Source = Literal["live", "shift"]


class NoCity(LookupError):
    """No districts are loaded yet: maps and studies have nothing to cover."""


def _boundary(geometry: BaseGeometry) -> Any:
    multi = geometry if isinstance(geometry, MultiPolygon) else MultiPolygon([geometry])
    return from_shape(multi, srid=4326)


async def save_city(session: AsyncSession, city: City) -> None:
    """Replace the stored districts and streets with this city's (one city per deployment). The caller
    commits."""
    await session.execute(delete(DistrictRow))  # its streets go with it (ON DELETE CASCADE)
    for district in city.districts:
        row = DistrictRow(
            city=city.name,
            name=district.name,
            name_zh=district.name_zh,
            population=district.population,
            boundary=_boundary(district.geometry),
        )
        session.add(row)
        await session.flush()
        session.add_all(
            StreetRow(
                district_id=row.id,
                name=s.name,
                name_zh=s.name_zh,
                population=s.population,
                boundary=_boundary(s.geometry),
            )
            for s in district.streets
        )


async def load_city(session: AsyncSession) -> City:
    rows = (await session.execute(select(DistrictRow).order_by(DistrictRow.id))).scalars().all()
    if not rows:
        raise NoCity("city: no city loaded; run `dispatch sim load-demo` or `dispatch sim load-city FILE`")
    streets: dict[int, list[Street]] = {r.id: [] for r in rows}
    for s in (await session.execute(select(StreetRow).order_by(StreetRow.id))).scalars():
        streets[s.district_id].append(Street(s.name, int(s.population), to_shape(s.boundary), s.name_zh))
    districts = tuple(
        District(r.name, int(r.population), to_shape(r.boundary), r.name_zh, tuple(streets[r.id]))
        for r in rows
    )
    return City(rows[0].city, districts)


def _feature(place: District | Street, **more: Any) -> dict[str, Any]:
    properties = {
        "name": place.name,
        "name_zh": place.name_zh,
        **more,
        "population": place.population,
        "area_km2": round(place.area_km2, 2),
        "label_at": _label_at(place),
    }
    return {"type": "Feature", "geometry": mapping(place.geometry), "properties": properties}


def _label_at(place: District | Street) -> list[float]:
    """Where a map writes the place's name, [lng, lat]: a point surely inside it (a bay-shaped district's
    centroid can lie in the sea or in its neighbour), so one label per place needs no collision work."""
    point = place.geometry.representative_point()
    return [round(point.x, 6), round(point.y, 6)]


def city_geojson(city: City) -> dict[str, Any]:
    """The districts as a FeatureCollection (WGS-84) with names (English, Chinese), population, area."""
    features = [_feature(d) for d in city.districts]
    return {"type": "FeatureCollection", "name": city.name, "features": features}


def streets_geojson(city: City) -> dict[str, Any]:
    """The streets as a FeatureCollection (WGS-84), each naming its district; empty when the city
    was loaded from a file of districts alone."""
    features = [_feature(s, district=city.districts[d].name) for d, s in city.streets]
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
