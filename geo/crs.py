"""WGS-84 ↔ GCJ-02 ↔ BD-09, the datums of Chinese maps.

Phones in China report GCJ-02 (the offset datum of Tencent/Amap SDKs) and Baidu uses BD-09; we
store WGS-84. The forward transforms are the published formulas; the inverses have no closed form,
so they iterate the forward one (a fixed-point on an almost-identity map) until the error is below
1e-10°, far inside the required 1e-7°. Points outside China are unchanged, as the datums define.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from enum import StrEnum
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

_A = 6378245.0  # Krasovsky 1940 semi-major axis used by GCJ-02
_EE = 0.00669342162296594323  # its first eccentricity squared
_BD_K = math.pi  # the angular constant of the BD-09 perturbation, as in the reference implementation
_TOL = 1e-10
_MAX_ITER = 30

Array = NDArray[np.float64]


class Crs(StrEnum):
    wgs84 = "wgs84"
    gcj02 = "gcj02"
    bd09 = "bd09"


def out_of_china(lat: float, lng: float) -> bool:
    """The rectangle outside which GCJ-02 applies no offset."""
    return not (72.004 <= lng <= 137.8347 and 0.8293 <= lat <= 55.8271)


def _in_china_np(lat: Array, lng: Array) -> NDArray[np.bool_]:
    return (lng >= 72.004) & (lng <= 137.8347) & (lat >= 0.8293) & (lat <= 55.8271)


def _gcj_offset(lat: Any, lng: Any, m: Any) -> tuple[Any, Any]:
    """The published GCJ-02 offset; `m` is `math` or `numpy` so one formula serves both paths."""
    x, y = lng - 105.0, lat - 35.0
    pi = math.pi
    dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * m.sqrt(abs(x))
    dlat += (20.0 * m.sin(6.0 * x * pi) + 20.0 * m.sin(2.0 * x * pi)) * 2.0 / 3.0
    dlat += (20.0 * m.sin(y * pi) + 40.0 * m.sin(y / 3.0 * pi)) * 2.0 / 3.0
    dlat += (160.0 * m.sin(y / 12.0 * pi) + 320.0 * m.sin(y * pi / 30.0)) * 2.0 / 3.0
    dlng = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * m.sqrt(abs(x))
    dlng += (20.0 * m.sin(6.0 * x * pi) + 20.0 * m.sin(2.0 * x * pi)) * 2.0 / 3.0
    dlng += (20.0 * m.sin(x * pi) + 40.0 * m.sin(x / 3.0 * pi)) * 2.0 / 3.0
    dlng += (150.0 * m.sin(x / 12.0 * pi) + 300.0 * m.sin(x / 30.0 * pi)) * 2.0 / 3.0
    rad = lat / 180.0 * pi
    magic = 1 - _EE * m.sin(rad) ** 2
    sqrt_magic = m.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1 - _EE)) / (magic * sqrt_magic) * pi)
    dlng = (dlng * 180.0) / (_A / sqrt_magic * m.cos(rad) * pi)
    return lat + dlat, lng + dlng


def _bd_forward(lat: Any, lng: Any, m: Any) -> tuple[Any, Any]:
    z = m.sqrt(lng * lng + lat * lat) + 0.00002 * m.sin(lat * _BD_K)
    theta = m.arctan2(lat, lng) if m is np else m.atan2(lat, lng)
    theta = theta + 0.000003 * m.cos(lng * _BD_K)
    return z * m.sin(theta) + 0.006, z * m.cos(theta) + 0.0065


def _invert(
    forward: Callable[[float, float], tuple[float, float]], lat: float, lng: float
) -> tuple[float, float]:
    """Solve forward(p) = (lat, lng) by fixed-point iteration (forward is identity + a smooth offset)."""
    plat, plng = lat, lng
    for _ in range(_MAX_ITER):
        flat, flng = forward(plat, plng)
        dlat, dlng = flat - lat, flng - lng
        plat, plng = plat - dlat, plng - dlng
        if abs(dlat) < _TOL and abs(dlng) < _TOL:
            break
    return plat, plng


def wgs84_to_gcj02(lat: float, lng: float) -> tuple[float, float]:
    if out_of_china(lat, lng):
        return lat, lng
    return _gcj_offset(lat, lng, math)


def gcj02_to_wgs84(lat: float, lng: float) -> tuple[float, float]:
    if out_of_china(lat, lng):
        return lat, lng
    return _invert(wgs84_to_gcj02, lat, lng)


def gcj02_to_bd09(lat: float, lng: float) -> tuple[float, float]:
    if out_of_china(lat, lng):
        return lat, lng
    return _bd_forward(lat, lng, math)


def bd09_to_gcj02(lat: float, lng: float) -> tuple[float, float]:
    if out_of_china(lat, lng):
        return lat, lng
    return _invert(gcj02_to_bd09, lat, lng)


def wgs84_to_bd09(lat: float, lng: float) -> tuple[float, float]:
    return gcj02_to_bd09(*wgs84_to_gcj02(lat, lng))


def bd09_to_wgs84(lat: float, lng: float) -> tuple[float, float]:
    return gcj02_to_wgs84(*bd09_to_gcj02(lat, lng))


_TO_WGS84 = {Crs.wgs84: lambda lat, lng: (lat, lng), Crs.gcj02: gcj02_to_wgs84, Crs.bd09: bd09_to_wgs84}
_FROM_WGS84 = {Crs.wgs84: lambda lat, lng: (lat, lng), Crs.gcj02: wgs84_to_gcj02, Crs.bd09: wgs84_to_bd09}


def to_wgs84(lat: float, lng: float, crs: Crs | str) -> tuple[float, float]:
    """A point given in `crs` expressed in WGS-84."""
    return _TO_WGS84[Crs(crs)](lat, lng)


def from_wgs84(lat: float, lng: float, crs: Crs | str) -> tuple[float, float]:
    """A WGS-84 point expressed in `crs` (for responses drawn on Chinese base maps)."""
    return _FROM_WGS84[Crs(crs)](lat, lng)


# --- vectorised -----------------------------------------------------------------------------------


def _wgs_to_gcj_np(lat: Array, lng: Array) -> tuple[Array, Array]:
    glat, glng = _gcj_offset(lat, lng, np)
    inside = _in_china_np(lat, lng)
    return np.where(inside, glat, lat), np.where(inside, glng, lng)


def _gcj_to_bd_np(lat: Array, lng: Array) -> tuple[Array, Array]:
    blat, blng = _bd_forward(lat, lng, np)
    inside = _in_china_np(lat, lng)
    return np.where(inside, blat, lat), np.where(inside, blng, lng)


def _invert_np(
    forward: Callable[[Array, Array], tuple[Array, Array]], lat: Array, lng: Array
) -> tuple[Array, Array]:
    plat, plng = lat.copy(), lng.copy()
    for _ in range(_MAX_ITER):
        flat, flng = forward(plat, plng)
        dlat, dlng = flat - lat, flng - lng
        plat -= dlat
        plng -= dlng
        if np.all(np.abs(dlat) < _TOL) and np.all(np.abs(dlng) < _TOL):
            break
    return plat, plng


def to_wgs84_np(lats: ArrayLike, lngs: ArrayLike, crs: Crs | str) -> tuple[Array, Array]:
    """Vectorised `to_wgs84` for many points."""
    lat, lng = np.asarray(lats, dtype=np.float64), np.asarray(lngs, dtype=np.float64)
    crs = Crs(crs)
    if crs is Crs.wgs84:
        return lat.copy(), lng.copy()
    if crs is Crs.bd09:
        lat, lng = _invert_np(_gcj_to_bd_np, lat, lng)
    return _invert_np(_wgs_to_gcj_np, lat, lng)


def from_wgs84_np(lats: ArrayLike, lngs: ArrayLike, crs: Crs | str) -> tuple[Array, Array]:
    """Vectorised `from_wgs84` for many points."""
    lat, lng = np.asarray(lats, dtype=np.float64), np.asarray(lngs, dtype=np.float64)
    crs = Crs(crs)
    if crs is Crs.wgs84:
        return lat.copy(), lng.copy()
    glat, glng = _wgs_to_gcj_np(lat, lng)
    return _gcj_to_bd_np(glat, glng) if crs is Crs.bd09 else (glat, glng)


def transform_geojson(geometry: dict[str, Any], src: Crs | str, dst: Crs | str) -> dict[str, Any]:
    """A GeoJSON geometry with every position moved from `src` to `dst` (GeoJSON order is lng, lat)."""
    src, dst = Crs(src), Crs(dst)
    if src is dst:
        return geometry

    def move(coords: Any) -> Any:
        if coords and isinstance(coords[0], int | float):
            lat, lng = to_wgs84(coords[1], coords[0], src)
            lat, lng = from_wgs84(lat, lng, dst)
            return [lng, lat, *coords[2:]]
        return [move(c) for c in coords]

    if geometry["type"] == "GeometryCollection":
        return {**geometry, "geometries": [transform_geojson(g, src, dst) for g in geometry["geometries"]]}
    return {**geometry, "coordinates": move(geometry["coordinates"])}
