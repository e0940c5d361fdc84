"""What the region tags do to the work, worked out without Redis: how many slots (and shards) one
nearby query fans out to, and how often a fix moves its responder to another region (the two-step
move between slots). Pure functions of the page cover (`geo.cells.page_cover_ids`) and the region
of a page (its ancestor at `live_region_resolution`), so the figures hold for any deployment.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from redis.cluster import key_slot

from benchmarks.province import moved
from geo.cells import cells_of, page_cover_ids, parents_of

SLOTS = 16_384


def region_slots(regions: np.ndarray) -> np.ndarray:
    """The cluster slot of each region's hash tag `{<region hex>}` (CRC16 of the tag's text)."""
    return np.array([key_slot(f"{r:x}".encode()) for r in regions.tolist()], dtype=np.int64)


def shard_of(slots: np.ndarray, shards: int) -> np.ndarray:
    """The shard holding each slot when `redis-cli --cluster create` splits the slots evenly."""
    bounds = np.array([SLOTS * (k + 1) // shards for k in range(shards)])
    return np.searchsorted(bounds, slots, side="right")


@dataclass(frozen=True)
class FanOut:
    """Per query at one radius: the pages read, and the regions, slots and shards they sit in."""

    radius_m: float
    pages: float  # mean
    regions: float  # mean
    slots: float  # mean: one MGET each
    shards: float  # mean, on 3 primaries: the round trips that run in parallel
    several_slots: float  # share of queries touching more than one slot
    most_slots: int


def fan_out(
    lats: Sequence[float],
    lngs: Sequence[float],
    radius_m: float,
    *,
    resolution: int,
    page_resolution: int,
    region_resolution: int,
    shards: int = 3,
) -> FanOut:
    """The fan-out of a nearby query of `radius_m` at each of the points."""
    pages, regions, slots, nodes = [], [], [], []
    for lat, lng in zip(lats, lngs, strict=True):
        cover = page_cover_ids(lat, lng, radius_m, resolution, page_resolution)
        here = np.unique(parents_of(cover, region_resolution))
        touched = np.unique(region_slots(here))
        pages.append(len(cover))
        regions.append(len(here))
        slots.append(len(touched))
        nodes.append(len(np.unique(shard_of(touched, shards))))
    slots_np = np.array(slots)
    return FanOut(
        radius_m,
        float(np.mean(pages)),
        float(np.mean(regions)),
        float(slots_np.mean()),
        float(np.mean(nodes)),
        float((slots_np > 1).mean()),
        int(slots_np.max()),
    )


@dataclass(frozen=True)
class Crossings:
    """Of fixes `step_m` from the last one: the share that change page, and region (slot)."""

    step_m: float
    fixes: int
    page_share: float
    region_share: float


def crossings(
    lat: np.ndarray,
    lng: np.ndarray,
    step_m: float,
    *,
    resolution: int,
    page_resolution: int,
    region_resolution: int,
    seed: int = 5,
) -> Crossings:
    """Each responder moves `step_m` on a random heading: how many fixes leave the page, and how
    many the region. The region is that of the stored cell's page (the H3 ancestor of the res-9
    cell, whose jagged edge is a little longer than a hexagon's), as the store computes it."""
    to_lat, to_lng = moved(lat, lng, step_m, np.random.default_rng(seed))
    before = parents_of(cells_of(np.round(lat, 6), np.round(lng, 6), resolution), page_resolution)
    after = parents_of(cells_of(np.round(to_lat, 6), np.round(to_lng, 6), resolution), page_resolution)
    region_before = parents_of(before, region_resolution)
    region_after = parents_of(after, region_resolution)
    return Crossings(
        step_m, len(lat), float((before != after).mean()), float((region_before != region_after).mean())
    )
