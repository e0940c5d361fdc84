"""Great-circle distance on the mean Earth sphere, for one pair and vectorised; the point at a
distance and bearing (for the shapes an emergency centre describes a place with, `cad.pidf`)."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

EARTH_RADIUS_M = 6_371_008.8  # IUGG mean radius; error vs the ellipsoid < 0.5 % — far below circuity


def haversine_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Metres along the great circle; haversine stays accurate at the short ranges dispatch uses."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp = p2 - p1
    dl = math.radians(lng2 - lng1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def destination(lat: float, lng: float, distance: float, bearing_deg: float) -> tuple[float, float]:
    """The point `distance` metres from (lat, lng) on the bearing (degrees clockwise from north)."""
    p1, l1, b = math.radians(lat), math.radians(lng), math.radians(bearing_deg)
    d = distance / EARTH_RADIUS_M
    p2 = math.asin(math.sin(p1) * math.cos(d) + math.cos(p1) * math.sin(d) * math.cos(b))
    l2 = l1 + math.atan2(math.sin(b) * math.sin(d) * math.cos(p1), math.cos(d) - math.sin(p1) * math.sin(p2))
    return math.degrees(p2), (math.degrees(l2) + 540) % 360 - 180


def haversine_m_np(lat1: ArrayLike, lng1: ArrayLike, lat2: ArrayLike, lng2: ArrayLike) -> NDArray[np.float64]:
    """Vectorised `haversine_m` with numpy broadcasting (scalars and arrays mix freely)."""
    p1 = np.radians(np.asarray(lat1, dtype=np.float64))
    p2 = np.radians(np.asarray(lat2, dtype=np.float64))
    dl = np.radians(np.asarray(lng2, dtype=np.float64) - np.asarray(lng1, dtype=np.float64))
    a = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.minimum(1.0, np.sqrt(a)))
