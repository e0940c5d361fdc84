"""HTTP routes of the planner: the city, coverage studies and what-if placement (thin adapters).

Studies are heavy CPU and memory work: the worker only gathers their inputs, refuses a grid larger
than `study_max_cells`, and hands the rest to the job runner (`simulator.jobs`, a process per study
with memory and time limits). A study done within `study_sync_wait_s` answers 200 as it always
did; a longer one answers 202 with a job to poll at `GET /v1/jobs/{id}`.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

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
from simulator.importers import CityFileError, city_from_geojson
from simulator.job_store import JobStore
from simulator.jobs import StudyRunner
from simulator.schemas import CoverageOut, Inputs, JobOut, PlacementIn, PlacementOut, StudyIn
from simulator.studies import PNG as PNG_TYPE
from simulator.studies import StudySpec, estimate_cells

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


def _inputs_out(inputs: service.StudyInputs) -> Inputs:
    return Inputs(at=inputs.at, source=inputs.source, responders=inputs.responders, aeds=inputs.aeds)


def _city_out(city: service.City) -> dict[str, Any]:
    return {
        "name": city.name,
        "population": city.population,
        "districts": service.city_geojson(city),
        "streets": service.streets_geojson(city),
    }


@router.get("/city", responses=errors(404))
async def get_city(
    _: Principal = Depends(map_readers), session: AsyncSession = Depends(get_session)
) -> dict[str, Any]:
    """The loaded city: `districts` and their `streets` as GeoJSON (WGS-84) with names (English and
    Chinese), population, area and `label_at` ([lng, lat] inside the place, where a map writes its
    name); `streets` is empty for a city loaded from a district file."""
    return _city_out(await _city(session))


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
    return _city_out(city)


STUDY_RESPONSES: dict[int | str, dict[str, Any]] = {
    **PNG,
    202: {"model": JobOut, "description": "longer than the synchronous wait: a job to poll"},
    **errors(404),  # no city loaded yet
}


def _refuse_too_big(request: Request, city: service.City, resolution: int) -> None:
    """422 before anything runs when the grid would exceed `study_max_cells`."""
    limit = request.app.state.settings.study_max_cells
    cells = estimate_cells(city, resolution)
    if cells > limit:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_ENTITY,
            f"resolution: at resolution {resolution} the city is about {cells:,} H3 cells, more than "
            f"the limit of {limit:,} cells per study (DISPATCH_STUDY_MAX_CELLS); choose a coarser resolution",
        )


def _job_out(job_id: uuid.UUID, status_: str, progress: float, error: str | None = None) -> JobOut:
    return JobOut(
        job_id=str(job_id), status=status_, progress=progress, poll=f"/v1/jobs/{job_id}", error=error
    )  # type: ignore[arg-type]


async def _submit(request: Request, session: AsyncSession, spec: StudySpec) -> Response:
    """Run the study as a job; answer with its body if it ends within the wait, else 202."""
    await session.close()  # the inputs are read: hold no pooled connection while the study runs
    runner: StudyRunner = request.app.state.studies
    job_id = await runner.submit(spec)
    outcome = await runner.wait(job_id, request.app.state.settings.study_sync_wait_s)
    if outcome is None:
        job = _job_out(job_id, runner.status(job_id), 0.0)
        return Response(
            job.model_dump_json(), status_code=status.HTTP_202_ACCEPTED, media_type="application/json",
            headers={"Location": job.poll},
        )  # fmt: skip
    if outcome.error is not None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, outcome.error)
    return Response(outcome.body, media_type=outcome.media_type)


@router.post("/coverage", response_model=CoverageOut, responses=STUDY_RESPONSES)
async def coverage(
    request: Request,
    body: StudyIn,
    format: Literal["json", "png"] = "json",
    field: Literal["responder", "aed"] = "responder",
    _: Principal = Depends(planners),
    session: AsyncSession = Depends(get_session),
) -> Any:
    """Per H3 cell, the fastest responder and AED-at-patient ETAs; shares per district; or the map."""
    city = await _city(session)
    _refuse_too_big(request, city, body.resolution)
    inputs = await _inputs(request, session, body, city)
    spec = StudySpec(
        "coverage", city, inputs.snapshot, ReachModel.from_settings(request.app.state.settings),
        body.resolution, body.reach_s, _inputs_out(inputs), format=format, field=field,
    )  # fmt: skip
    return await _submit(request, session, spec)


@router.post("/coverage/placement", response_model=PlacementOut, responses=STUDY_RESPONSES)
async def placement(
    request: Request,
    body: PlacementIn,
    format: Literal["json", "png"] = "json",
    _: Principal = Depends(planners),
    session: AsyncSession = Depends(get_session),
) -> Any:
    """Greedy sites for `k` new AEDs or recruits, with the marginal-gain curve; or the map."""
    city = await _city(session)
    _refuse_too_big(request, city, body.resolution)
    inputs = await _inputs(request, session, body, city)
    spec = StudySpec(
        "placement", city, inputs.snapshot, ReachModel.from_settings(request.app.state.settings),
        body.resolution, body.reach_s, _inputs_out(inputs), format=format, kind=body.kind, k=body.k,
        mode=service.recruit_mode(body.category) if body.kind == "recruit" else None,
    )  # fmt: skip
    return await _submit(request, session, spec)


JOB_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/png": {}}, "description": "the job; with format=png, once done: the map"},
    404: {"description": "no such job"},
}


@router.get("/jobs/{job_id}", response_model=JobOut, responses=JOB_RESPONSES)
async def get_job(request: Request, job_id: uuid.UUID, _: Principal = Depends(planners)) -> Any:
    """A study job: status (queued, running, done, failed), progress, and the result once done."""
    job = await JobStore(request.app.state.db.sessions).get(job_id)
    if job is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"job_id: no study job {job_id}")
    if job.status == "done" and job.media_type == PNG_TYPE and job.result is not None:
        return Response(job.result, media_type=PNG_TYPE)
    head = _job_out(job.id, job.status, job.progress, job.error).model_dump_json(exclude={"result"})
    if job.status == "done" and job.result is not None:
        # the result is spliced in as bytes: a res-10 GeoJSON is never parsed again in the worker
        return Response(head[:-1].encode() + b',"result":' + job.result + b"}", media_type="application/json")
    return Response(head, media_type="application/json")
