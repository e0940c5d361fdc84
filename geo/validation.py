"""Coordinate validation shared by every endpoint, with messages naming the rule that failed.

The rules are pydantic's own constraints (checked in Rust, not a Python callback per value: a
gateway batch checks 10,000 coordinates), and pydantic prefixes the field name
(`lat: Input should be less than or equal to 90`). `check_lat_lng` applies the same rules, with
the same words, on paths that parse outside a model (CSV rows).

In a JSON body a coordinate is a number, as the contract says: `"22.54"` is refused (strict), so a
client that sends text finds out at once instead of working by accident. Query parameters are text
by nature, so `LatitudeQuery`/`LongitudeQuery` keep the same bounds and read the number from it.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, TypeAdapter, ValidationError

from geo.crs import Crs

LatitudeQuery = Annotated[
    float, Field(ge=-90, le=90, allow_inf_nan=False, description="degrees north, [-90, 90]")
]
LongitudeQuery = Annotated[
    float, Field(ge=-180, le=180, allow_inf_nan=False, description="degrees east, [-180, 180]")
]
Latitude = Annotated[LatitudeQuery, Field(strict=True)]
"""A JSON number (never text) in [-90, 90]."""
Longitude = Annotated[LongitudeQuery, Field(strict=True)]
"""A JSON number (never text) in [-180, 180]."""
CrsField = Annotated[Crs, Field(description="datum of the coordinates: wgs84 (default), gcj02 or bd09")]

_CHECKS = (("lat", TypeAdapter(Latitude)), ("lng", TypeAdapter(Longitude)))


def check_lat_lng(lat: float, lng: float) -> None:
    """Raise `ValueError("lat: …")` / `ValueError("lng: …")` for a bad pair (non-pydantic paths)."""
    for (name, check), value in zip(_CHECKS, (lat, lng), strict=True):
        try:
            check.validate_python(value, strict=True)  # a number: no bool, no text
        except ValidationError as exc:
            raise ValueError(f"{name}: {exc.errors()[0]['msg']}") from None
