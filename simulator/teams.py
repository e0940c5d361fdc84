"""The demo's team hierarchy: city → district → street → community, following Shenzhen's real streets.

Districts and streets are the real ones (the city's data); communities (社区) are not in the data, so
each street is given about one per `PEOPLE_PER_COMMUNITY` residents (Shenzhen's streets hold roughly
ten each), each with a seat drawn inside the street, and a worker belongs to the community whose seat
is nearest within their own street — the way a street office divides its ground among its
communities. Paths use the pinyin names ('futian/nanyuan/community-2'); the registry prefixes the
city ('shenzhen').
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from simulator.city import City, LocalProjection
from simulator.population import PlaceSampler

PEOPLE_PER_COMMUNITY = 25_000


@dataclass(frozen=True, slots=True)
class Community:
    """A community team and where its seat is (inside its street)."""

    path: str
    lat: float
    lng: float


def slug(name: str) -> str:
    """A path segment from a pinyin or English name: "Bao'an" → 'bao-an'."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "area"


def communities(city: City, seed: int = 0) -> list[list[Community]]:
    """The communities of each street, in the order of `city.streets` (same seed, same seats)."""
    rng = np.random.default_rng([seed, 21])
    out = []
    for d, street in city.streets:
        street_path = f"{slug(city.districts[d].name)}/{slug(street.name)}"
        count = max(1, round(street.population / PEOPLE_PER_COMMUNITY))
        lat, lng = PlaceSampler(street).uniform(count, rng)
        out.append(
            [
                Community(f"{street_path}/community-{k + 1}", float(lat[k]), float(lng[k]))
                for k in range(count)
            ]
        )
    return out


def nearest_seat(seats: Sequence[Community], lats: np.ndarray, lngs: np.ndarray) -> np.ndarray:
    """Index of the nearest seat to each point (metres on a local plane: neighbours, not reach)."""
    proj = LocalProjection(float(np.mean(lats)), float(np.mean(lngs)))
    px, py = proj.to_xy(lngs, lats)
    sx, sy = proj.to_xy(np.array([s.lng for s in seats]), np.array([s.lat for s in seats]))
    d2 = (np.asarray(px)[:, None] - np.asarray(sx)[None, :]) ** 2 + (
        np.asarray(py)[:, None] - np.asarray(sy)[None, :]
    ) ** 2
    return np.argmin(d2, axis=1)


def team_paths(
    city: City,
    seats: Sequence[Sequence[Community]],
    lats: Sequence[float] | np.ndarray,
    lngs: Sequence[float] | np.ndarray,
) -> list[str | None]:
    """The team of a worker standing at each point: their community when the city knows streets, their
    district when it knows only districts, None outside the city."""
    lat = np.asarray(lats, dtype=np.float64)
    lng = np.asarray(lngs, dtype=np.float64)
    out: list[str | None] = [
        slug(city.districts[d].name) if d >= 0 else None for d in city.district_index(lat, lng)
    ]
    street = city.street_index(lat, lng)
    for s, mine in enumerate(seats):
        who = np.flatnonzero(street == s)
        if len(who):
            for i, k in zip(who, nearest_seat(mine, lat[who], lng[who]), strict=True):
                out[i] = mine[k].path
    return out
