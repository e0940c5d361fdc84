"""Synthetic people and AEDs for a city: who stands where, on which shift, with which defibrillators.

The programme's facts (simulator/data/README.md) set the sizes: about 8,000 trained frontline workers
and 23,000 public AEDs in Shenzhen. Counts per place (a street, or a district whose streets the
city does not know) follow its residents, and every point is drawn inside that place's outline, so
nobody stands in the sea or across the border. Within a place each category lives where its work
is: sanitation workers along streets, park security around parks, inspectors and auxiliary staff
anywhere on patrol. AEDs cluster at hubs (metro
stations, hospitals: open 24/7) and are otherwise spread over offices and shops with business
hours. A seed makes all of it reproducible.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import shapely

from simulator.city import City, LocalProjection, Place

Shift = Literal["day", "night"]
Draw = Callable[[int, np.random.Generator], tuple[np.ndarray, np.ndarray]]
DAY_STARTS_H, NIGHT_STARTS_H = 7, 19
STREET_SPACING_M = 300.0
PARK_SPREAD_M = 250.0
PARK_EVERY_KM2 = 15.0
PEOPLE_PER_HUB = 30_000  # a metro station or hospital with 24/7 AEDs per so many residents

# Category → (share of the workforce, share on e-bikes); the rest walk.
CATEGORY_MIX: dict[str, tuple[float, float]] = {
    "sanitation_worker": (0.40, 0.50),
    "city_inspector": (0.20, 0.60),
    "park_security": (0.20, 0.10),
    "auxiliary_staff": (0.20, 0.30),
}
NIGHT_SHARE = 0.3
# Opening hours of AEDs away from hubs: offices and shops, then malls and public buildings.
AED_HOURS = (("Mo-Fr 08:00-18:00", 0.55), ("Mo-Su 09:00-22:00", 0.45))
HUB_SHARE = 0.3


@dataclass(frozen=True, slots=True)
class SimResponder:
    responder_id: str
    category: str
    lat: float
    lng: float
    mode: str
    shift: Shift


@dataclass(frozen=True, slots=True)
class SimAed:
    aed_id: str
    lat: float
    lng: float
    opening_hours: str


def shift_at(hour: float) -> Shift:
    """Which shift is working at a local hour of day."""
    return "day" if DAY_STARTS_H <= hour % 24 < NIGHT_STARTS_H else "night"


def on_shift(people: Sequence[SimResponder], hour: float) -> list[SimResponder]:
    shift = shift_at(hour)
    return [p for p in people if p.shift == shift]


def places_of(city: City) -> list[Place]:
    """Where people are placed: every street, or a district as a whole when it has none."""
    return [place for d in city.districts for place in d.places]


def per_place(places: Sequence[Place], n: int, rng: np.random.Generator) -> np.ndarray:
    """How many of `n` fall in each place, drawn in proportion to its residents."""
    pops = np.array([p.population for p in places], dtype=np.float64)
    return rng.multinomial(n, pops / pops.sum())


class PlaceSampler:
    """Random points inside one place's outline, in metres around its centroid (vectorised rejection)."""

    def __init__(self, place: Place) -> None:
        c = place.geometry.centroid
        self.proj = LocalProjection(c.y, c.x)
        self.shape = self.proj.forward(place.geometry)
        shapely.prepare(self.shape)

    def _inside(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return shapely.contains_xy(self.shape, x, y)

    def _fill(self, n: int, draw: Draw, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        xs: list[np.ndarray] = [np.empty(0)]
        ys: list[np.ndarray] = [np.empty(0)]
        have = 0
        while have < n:
            x, y = draw(max(64, 2 * (n - have)), rng)
            keep = self._inside(x, y)
            xs.append(x[keep])
            ys.append(y[keep])
            have += int(keep.sum())
        x, y = np.concatenate(xs)[:n], np.concatenate(ys)[:n]
        lng, lat = self.proj.to_lnglat(x, y)
        return np.asarray(lat), np.asarray(lng)

    def _box(self, m: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        minx, miny, maxx, maxy = self.shape.bounds
        return rng.uniform(minx, maxx, m), rng.uniform(miny, maxy, m)

    def uniform(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        return self._fill(n, self._box, rng)

    def on_streets(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Points on a street grid: one coordinate snapped to a multiple of the block size."""

        def draw(m: int, g: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
            x, y = self._box(m, g)
            snap_x = g.random(m) < 0.5
            x = np.where(snap_x, np.round(x / STREET_SPACING_M) * STREET_SPACING_M, x)
            y = np.where(snap_x, y, np.round(y / STREET_SPACING_M) * STREET_SPACING_M)
            return x, y

        return self._fill(n, draw, rng)

    def around(
        self, n: int, centres: tuple[np.ndarray, np.ndarray], spread_m: float, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Points scattered (Gaussian, `spread_m`) around randomly chosen centres given as lat/lng."""
        cx, cy = self.proj.to_xy(centres[1], centres[0])

        def draw(m: int, g: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
            k = g.integers(0, len(cx), m)
            return np.asarray(cx)[k] + g.normal(0, spread_m, m), np.asarray(cy)[k] + g.normal(0, spread_m, m)

        return self._fill(n, draw, rng)


def synth_responders(city: City, n: int = 8000, seed: int = 0) -> list[SimResponder]:
    """`n` certified frontline workers, by category, place, shift and travel mode."""
    rng = np.random.default_rng([seed, 1])
    cats = list(CATEGORY_MIX)
    shares = np.array([CATEGORY_MIX[c][0] for c in cats])
    people: list[SimResponder] = []
    places = places_of(city)
    for place, count in zip(places, per_place(places, n, rng), strict=True):
        sampler = PlaceSampler(place)
        parks = sampler.uniform(max(1, round(place.area_km2 / PARK_EVERY_KM2)), rng)
        for cat, m in zip(cats, rng.multinomial(count, shares / shares.sum()), strict=True):
            if cat == "sanitation_worker":
                lat, lng = sampler.on_streets(m, rng)
            elif cat == "park_security":
                lat, lng = sampler.around(m, parks, PARK_SPREAD_M, rng)
            else:
                lat, lng = sampler.uniform(m, rng)
            ebike = rng.random(m) < CATEGORY_MIX[cat][1]
            night = rng.random(m) < NIGHT_SHARE
            for i in range(m):
                people.append(
                    SimResponder(
                        f"demo-r{len(people):05d}",
                        cat,
                        float(lat[i]),
                        float(lng[i]),
                        "ebike" if ebike[i] else "walk",
                        "night" if night[i] else "day",
                    )
                )
    return people


def synth_aeds(city: City, n: int = 23000, seed: int = 0) -> list[SimAed]:
    """`n` public AEDs: a share at 24/7 hubs, the rest with business or mall hours."""
    rng = np.random.default_rng([seed, 2])
    hours = [h for h, _ in AED_HOURS]
    weights = np.array([w for _, w in AED_HOURS])
    aeds: list[SimAed] = []
    places = places_of(city)
    for place, count in zip(places, per_place(places, n, rng), strict=True):
        sampler = PlaceSampler(place)
        at_hubs = int(rng.binomial(count, HUB_SHARE))
        hubs = sampler.uniform(max(1, round(place.population / PEOPLE_PER_HUB)), rng)
        hub_lat, hub_lng = sampler.around(at_hubs, hubs, 60.0, rng)
        lat, lng = sampler.uniform(count - at_hubs, rng)
        picks = rng.choice(len(hours), size=count - at_hubs, p=weights / weights.sum())
        for i in range(at_hubs):
            aeds.append(SimAed(f"demo-aed{len(aeds):05d}", float(hub_lat[i]), float(hub_lng[i]), "24/7"))
        for i in range(count - at_hubs):
            aeds.append(SimAed(f"demo-aed{len(aeds):05d}", float(lat[i]), float(lng[i]), hours[picks[i]]))
    return aeds
