"""Request and response bodies of the planner's endpoints (`/v1/city`, `/v1/coverage…`)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, Field

from core.inputs import InputModel
from responders.schemas import ResponderCategory


class StudyIn(InputModel):
    """What to study: grid resolution, reach, the moment, and whose positions."""

    resolution: int = Field(9, ge=6, le=10, description="H3 resolution of the grid (9: cells of ~0.1 km²)")
    reach_s: float = Field(300, ge=60, le=900, description="seconds within which help counts as in time")
    at: AwareDatetime | None = Field(None, description="the moment (AED hours, shift); default now")
    source: Literal["live", "shift"] = Field(
        "live", description="live: fresh positions now; shift: the programme's synthetic workforce on shift"
    )
    workforce: int = Field(8000, ge=1, le=200_000, description="synthetic workers for source=shift")
    seed: int = Field(0, ge=0, description="seed of the synthetic workforce (source=shift)")


class PlacementIn(StudyIn):
    kind: Literal["aed", "recruit"] = Field(description="what to add")
    k: int = Field(ge=1, le=500, description="how many to place")
    category: ResponderCategory | None = Field(None, description="recruits' category (sets the travel mode)")


class Inputs(BaseModel):
    at: datetime
    source: str
    responders: int
    aeds: int


class CoverageOut(BaseModel):
    inputs: Inputs
    summary: dict
    cells: dict = Field(description="GeoJSON FeatureCollection of the H3 cells with both ETAs")


class SiteOut(BaseModel):
    lat: float
    lng: float
    cell: str
    gain_population: int
    gain_cells: int


class PlacementOut(BaseModel):
    inputs: Inputs
    kind: str
    mode: str | None = None
    baseline_share: float
    curve: list[float] = Field(description="population share covered after each added site")
    sites: list[SiteOut]


class JobOut(BaseModel):
    """A study that runs longer than the synchronous wait: where and how to follow it."""

    job_id: str
    status: Literal["queued", "running", "done", "failed"]
    progress: float = Field(description="share done, 0 to 1")
    poll: str = Field(description="GET this for the status, and the result when done")
    error: str | None = Field(None, description="why it failed (status failed)")
    result: dict | None = Field(
        None, description="the study's JSON body when done (format=png: the PNG itself)"
    )
