"""One planner study from its inputs to the bytes the planner gets back (JSON or PNG), pure.

This is what a study job's process runs (`simulator.jobs`): everything numeric happens here, far
from the worker that serves incidents, and it ends in the response body itself so the worker only
relays bytes. `estimate_cells` sizes a study before anything runs, so what cannot fit is refused.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import h3

from geo.reach import ReachModel
from simulator.city import City
from simulator.coverage import Progress, Snapshot, cells_geojson, city_grid, study, summarise
from simulator.schemas import CoverageOut, Inputs, PlacementOut

JSON = "application/json"
PNG = "image/png"


@dataclass(frozen=True)
class StudySpec:
    """Everything a study needs, gathered by the worker and handed (pickled) to the job process."""

    what: Literal["coverage", "placement"]
    city: City
    snapshot: Snapshot
    model: ReachModel
    resolution: int
    reach_s: float
    inputs: Inputs
    format: Literal["json", "png"] = "json"
    field: str = "responder"  # coverage map: which ETA colours the cells
    kind: Literal["aed", "recruit"] = "aed"  # placement: what to add
    k: int = 0
    mode: str | None = None  # placement of recruits: their travel mode


def estimate_cells(city: City, resolution: int) -> int:
    """About how many H3 cells the study's grid will hold: the city's area over a cell's.

    Cells drive what a study must hold (per-cell ETAs, the GeoJSON of every cell, the placement's
    candidate sites); the count is known before a single cell is made.
    """
    area = sum(d.area_km2 for d in city.districts)
    return round(area / h3.average_hexagon_area(resolution, unit="km^2"))


def _phase(on_progress: Progress | None, start: float, width: float) -> Progress | None:
    """A progress callback for one phase of a study, as a share of the whole (`total` of 1000)."""
    if on_progress is None:
        return None
    report = on_progress
    return lambda done, total: report(round(1000 * (start + width * done / max(total, 1))), 1000)


def run(spec: StudySpec, on_progress: Progress | None = None) -> tuple[str, bytes]:
    """(media type, body): the same body the planner endpoints have always answered with."""
    from simulator.placement import place_aeds, place_recruits
    from simulator.render import coverage_png

    grid = city_grid(spec.city, spec.resolution)
    phase = 0.9 if spec.what == "coverage" else 0.5
    result = study(grid, spec.snapshot, spec.model, spec.reach_s, _phase(on_progress, 0.0, phase))
    if spec.what == "coverage":
        if spec.format == "png":
            return PNG, coverage_png(spec.city, result, field=f"{spec.field}_eta_s")
        body: Any = CoverageOut(
            inputs=spec.inputs,
            summary=summarise(result, spec.city),
            cells=cells_geojson(result, spec.city),
        )
        return JSON, body.model_dump_json().encode()
    rest = _phase(on_progress, phase, 0.45)
    if spec.kind == "aed":
        plan, field = place_aeds(result, spec.snapshot, spec.model, spec.k, rest), "aed_eta_s"
    else:
        plan = place_recruits(result, spec.mode or "walk", spec.model, spec.k, rest)
        field = "responder_eta_s"
    if spec.format == "png":
        return PNG, coverage_png(spec.city, result, field=field, sites=plan.sites)
    body = PlacementOut(
        inputs=spec.inputs,
        kind=spec.kind,
        mode=spec.mode,
        baseline_share=plan.baseline_share,
        curve=plan.curve,
        sites=[asdict(s) for s in plan.sites],
    )
    return JSON, body.model_dump_json().encode()
