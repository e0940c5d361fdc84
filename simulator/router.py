"""HTTP routes of the planner: the city, coverage studies and what-if placement (thin adapters).

Studies are CPU work (numpy, scipy, shapely release the GIL for most of it); they run in a worker
thread so the event loop keeps serving dispatchers' websockets while a planner waits.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from functools import partial
from typing import Annotated, Any, Literal

import anyio
from fastapi import APIRouter, Body, Depends, HTTPException, Query, Request, Response, status
from sqlalchemy.ext.asyncio import AsyncSession

from aed_registry.availability import HoursPolicy
from core.auth import Principal, Role, require_roles
from core.config import Settings
from core.deps import get_session
from core.inputs import Text
from core.openapi import errors
from geo.crs import Crs
from geo.reach import ReachModel
from simulator import service
from simulator.coverage import cells_geojson, summarise
from simulator.importers import CityFileError, city_from_geojson
from simulator.placement import place_aeds, place_recruits
from simulator.render import coverage_png
from simulator.schemas import CoverageOut, Inputs, PlacementIn, PlacementOut, StudyIn

router = APIRouter(prefix="/v1", tags=["planning"])
planners = require_roles(Role.planner, Role.admin)
map_readers = require_roles(Role.planner, Role.dispatcher, Role.admin)
admin_only = require_roles(Role.admin)
PNG = {200: {"content": {"image/png": {}}, "description": "with format=png: the map"}}


async def _city(session: AsyncSession) -> service.City:
    try:
        return await service.load_city(session)
    except service.NoCity as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None


async def _inputs(
    request: Request, session: AsyncSession, body: StudyIn, city: service.City
) -> service.StudyInputs:
    settings: Settings = request.app.state.settings
    return await service.gather(
        session,
        request.app.state.live_store,
        city,
        source=body.source,
        at=body.at or datetime.now(UTC),
        hours=HoursPolicy.from_settings(settings),
        staleness_s=settings.staleness_s,
        workforce=body.workforce,
        seed=body.seed,
    )


async def _prepare(
    request: Request, session: AsyncSession, body: StudyIn
) -> tuple[service.City, service.StudyInputs, ReachModel]:
    """The stored city, the study's inputs and the reach model every study shares."""
    city = await _city(session)
    inputs = await _inputs(request, session, body, city)
    return city, inputs, ReachModel.from_settings(request.app.state.settings)


def _inputs_out(inputs: service.StudyInputs) -> Inputs:
    return Inputs(at=inputs.at, source=inputs.source, responders=inputs.responders, aeds=inputs.aeds)


@router.get("/city", responses=errors(404))
async def get_city(
    _: Principal = Depends(map_readers), session: AsyncSession = Depends(get_session)
) -> dict[str, Any]:
    """The loaded city: `districts` as GeoJSON (WGS-84) with name, population and area."""
    city = await _city(session)
    return {"name": city.name, "population": city.population, "districts": service.city_geojson(city)}


@router.put("/city")
async def put_city(
    geojson: Annotated[dict[str, Any], Body(description="FeatureCollection of district (Multi)Polygons")],
    crs: Crs = Crs.wgs84,
    name: Annotated[Text, Query(min_length=1, max_length=200)] = "City",
    name_property: str = "name",
    population_property: str = "population",
    _: Principal = Depends(admin_only),
    session: AsyncSession = Depends(get_session),
) -> dict[str, Any]:
    """Replace the city's districts (boundaries in `crs`, converted to WGS-84)."""
    try:
        city = city_from_geojson(
            geojson, crs, name=name, name_property=name_property, population_property=population_property
        )
    except CityFileError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, str(exc)) from None
    await service.save_city(session, city)
    await session.commit()
    return {"name": city.name, "population": city.population, "districts": service.city_geojson(city)}


@router.post("/coverage", response_model=CoverageOut, responses=PNG)
async def coverage(
    request: Request,
    body: StudyIn,
    format: Literal["json", "png"] = "json",
    field: Literal["responder", "aed"] = "responder",
    _: Principal = Depends(planners),
    session: AsyncSession = Depends(get_session),
) -> Any:
    """Per H3 cell, the fastest responder and AED-at-patient ETAs; shares per district; or the map."""
    city, inputs, model = await _prepare(request, session, body)
    result = await anyio.to_thread.run_sync(
        service.run_study, city, inputs.snapshot, model, body.resolution, body.reach_s
    )
    if format == "png":
        png = await anyio.to_thread.run_sync(partial(coverage_png, city, result, field=f"{field}_eta_s"))
        return Response(png, media_type="image/png")
    summary, cells = await anyio.to_thread.run_sync(
        lambda: (summarise(result, city.names), cells_geojson(result, city.names))
    )
    return CoverageOut(inputs=_inputs_out(inputs), summary=summary, cells=cells)


@router.post("/coverage/placement", response_model=PlacementOut, responses=PNG)
async def placement(
    request: Request,
    body: PlacementIn,
    format: Literal["json", "png"] = "json",
    _: Principal = Depends(planners),
    session: AsyncSession = Depends(get_session),
) -> Any:
    """Greedy sites for `k` new AEDs or recruits, with the marginal-gain curve; or the map."""
    city, inputs, model = await _prepare(request, session, body)
    mode = service.recruit_mode(body.category) if body.kind == "recruit" else None

    def run() -> tuple[Any, Any]:
        result = service.run_study(city, inputs.snapshot, model, body.resolution, body.reach_s)
        if mode is None:
            return result, place_aeds(result, inputs.snapshot, model, body.k)
        return result, place_recruits(result, mode, model, body.k)

    result, plan = await anyio.to_thread.run_sync(run)
    if format == "png":
        field = "aed_eta_s" if mode is None else "responder_eta_s"
        png = await anyio.to_thread.run_sync(
            partial(coverage_png, city, result, field=field, sites=plan.sites)
        )
        return Response(png, media_type="image/png")
    return PlacementOut(
        inputs=_inputs_out(inputs),
        kind=body.kind,
        mode=mode,
        baseline_share=plan.baseline_share,
        curve=plan.curve,
        sites=[asdict(s) for s in plan.sites],
    )
