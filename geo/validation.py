"""Coordinate validation shared by every endpoint, with messages naming the rule that failed.

Pydantic prefixes the field name (`lat: must be within [-90, 90]`), so the messages here say only
the rule; `check_lat_lng` is for code paths that parse outside pydantic (CSV rows, websocket frames).
"""

from __future__ import annotations

import math
from typing import Annotated

from pydantic import AfterValidator, Field

from geo.crs import Crs


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number (not NaN or infinity)")
    return value


def _lat(value: float) -> float:
    _finite(value)
    if not -90.0 <= value <= 90.0:
        raise ValueError("must be within [-90, 90]")
    return value


def _lng(value: float) -> float:
    _finite(value)
    if not -180.0 <= value <= 180.0:
        raise ValueError("must be within [-180, 180]")
    return value


Latitude = Annotated[
    float, Field(allow_inf_nan=True, description="degrees north, [-90, 90]"), AfterValidator(_lat)
]
Longitude = Annotated[
    float, Field(allow_inf_nan=True, description="degrees east, [-180, 180]"), AfterValidator(_lng)
]
CrsField = Annotated[Crs, Field(description="datum of the coordinates: wgs84 (default), gcj02 or bd09")]


def check_lat_lng(lat: float, lng: float) -> None:
    """Raise `ValueError("lat: …")` / `ValueError("lng: …")` for a bad pair (non-pydantic paths)."""
    for name, value, check in (("lat", lat, _lat), ("lng", lng, _lng)):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{name}: must be a number")
        try:
            check(float(value))
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None
