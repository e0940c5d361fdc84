"""The stream of simulated cardiac arrests and the coins each alerted responder tosses.

Both are seeded and pure, so a policy comparison (`simulator.policies`) is reproducible for a seed
and every policy faces the very same incidents and the very same answers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import h3
import numpy as np
from numpy.typing import ArrayLike, NDArray

from geo.distance import EARTH_RADIUS_M, haversine_m
from simulator.city import City
from simulator.coverage import city_grid

WEEK_S = 7 * 24 * 3600
DEFAULT_WEEK = date(2026, 11, 23)  # a Monday without public holidays: the same week as docs/COVERAGE.md
_M_PER_DEG = math.pi / 180 * EARTH_RADIUS_M

# --- the incident stream ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SimIncident:
    """A simulated cardiac arrest: where, in which district (index into the city's districts) and
    street (index into `City.streets`, -1 when the city knows none), when (local time)."""

    incident_id: int
    lat: float
    lng: float
    district: int
    at: datetime
    street: int = -1


def _point_in_cell(cell: str, rng: np.random.Generator) -> tuple[float, float]:
    """A uniform point inside one H3 cell: rejection from the disc through its corners."""
    lat0, lng0 = h3.cell_to_latlng(cell)
    radius = max(haversine_m(lat0, lng0, la, ln) for la, ln in h3.cell_to_boundary(cell))
    res = h3.get_resolution(cell)
    kx = _M_PER_DEG * math.cos(math.radians(lat0))
    while True:
        r, theta = radius * math.sqrt(rng.random()), 2 * math.pi * rng.random()
        lat, lng = lat0 + r * math.sin(theta) / _M_PER_DEG, lng0 + r * math.cos(theta) / kx
        if h3.latlng_to_cell(lat, lng, res) == cell:
            return lat, lng


def incident_stream(
    city: City, n: int, seed: int, *, tz: ZoneInfo, week_start: date = DEFAULT_WEEK, res: int = 9
) -> list[SimIncident]:
    """`n` incidents where people live (cells weighted by residents) at uniform times over one week.

    Cardiac arrests happen where people are, so the city's H3 cells are drawn in proportion to their
    population and the point is uniform within the cell; the time is uniform over the seven days from
    `week_start` 00:00 local, so day and night shifts and opening hours all get their share.
    """
    grid = city_grid(city, res)
    rng = np.random.default_rng([seed, 7])
    picks = rng.choice(len(grid), size=n, p=grid.population / grid.population.sum())
    offsets = rng.uniform(0, WEEK_S, n)
    start = datetime.combine(week_start, time(0), tzinfo=tz).astimezone(UTC)
    out = []
    for k, (cell_index, offset) in enumerate(zip(picks, offsets, strict=True)):
        lat, lng = _point_in_cell(grid.cells[cell_index], rng)
        at = (start + timedelta(seconds=float(offset))).astimezone(tz)
        out.append(SimIncident(k, lat, lng, int(grid.district[cell_index]), at, int(grid.street[cell_index])))
    return out


# --- paired acceptance ------------------------------------------------------------------------

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _splitmix(x: NDArray[np.uint64]) -> NDArray[np.uint64]:
    z = x + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def uniform_draws(
    seed: int, incident_id: int, responder_keys: ArrayLike, stream: int = 0
) -> NDArray[np.float64]:
    """A uniform number in [0, 1) for each responder of one incident, one independent one per `stream`.

    A hash of (seed, stream, incident, responder key) rather than a stream of random numbers: the draw
    does not depend on who else was near or in which order policies asked, so the same person answers
    the same way, after the same delay, to the same incident under every policy. Stream 0 decides
    acceptance (raising p only ever adds acceptances); the others decide silence and the delay.
    """
    keys = np.asarray(responder_keys, dtype=np.int64).astype(np.uint64)
    base = _splitmix(np.array([seed % 2**64], dtype=np.uint64))
    if stream:
        base = _splitmix(base ^ _splitmix(np.array([stream], dtype=np.uint64)))
    mixed = _splitmix(_splitmix(base ^ np.uint64(incident_id % 2**64)) ^ keys)
    return (mixed >> np.uint64(11)).astype(np.float64) * 2.0**-53


def acceptance_draws(seed: int, incident_id: int, responder_keys: ArrayLike) -> NDArray[np.float64]:
    """Stream 0 of `uniform_draws`: the responder accepts when their draw is below their probability."""
    return uniform_draws(seed, incident_id, responder_keys, 0)
