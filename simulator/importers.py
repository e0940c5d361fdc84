"""A real city from GeoJSON district boundaries, in any datum the service accepts.

Chinese boundary files are usually GCJ-02; every vertex is moved to WGS-84 here, once, so the grid,
the responders and the AEDs all meet in one datum. Populations come from a feature property, from a
mapping by district name, or — when neither is known — from area (uniform density), which the
summary then says nothing more precise than.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from shapely.geometry import MultiPolygon, Polygon, shape
from shapely.validation import make_valid

from core.inputs import NUL_RULE
from geo.crs import Crs, transform_geojson
from simulator.city import City, District, area_km2


class CityFileError(ValueError):
    """A boundary file we cannot use; the message names the feature and the rule."""


MAX_NAME = 200  # the stored district name's column width
MAX_POPULATION = 10**9  # more than any district on Earth: a bigger number is a unit or typing error
BOUNDS = ((-180.0, 180.0), (-90.0, 90.0))  # GeoJSON positions are [lng, lat]


def _position(position: Any, where: str) -> None:
    if not isinstance(position, list) or not 2 <= len(position) <= 3:
        raise CityFileError(f"{where}: a position must be [lng, lat]")
    for value, (low, high), axis in zip(position, BOUNDS, ("lng", "lat"), strict=False):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise CityFileError(f"{where}: {axis} must be a number")
        if not low <= value <= high:
            raise CityFileError(f"{where}: {axis} must be within [{low:g}, {high:g}]")


def _polygon(rings: Any, where: str) -> None:
    """A GeoJSON Polygon's coordinates: a list of linear rings of at least 4 [lng, lat] positions."""
    if not isinstance(rings, list) or not rings:
        raise CityFileError(f"{where}: a Polygon must be a non-empty list of rings")
    for r, ring in enumerate(rings):
        if not isinstance(ring, list) or len(ring) < 4:
            raise CityFileError(
                f"{where}.{r}: a ring needs at least 4 positions, the last equal to the first"
            )
        for p, position in enumerate(ring):
            _position(position, f"{where}.{r}.{p}")


def _check_geometry(geometry: Any, where: str) -> None:
    """The GeoJSON structure shapely expects, checked first so that a bad file is a 422, not a crash."""
    if not isinstance(geometry, dict):
        raise CityFileError(f"{where}.geometry: must be a GeoJSON geometry object")
    kind, coords = geometry.get("type"), geometry.get("coordinates")
    if kind == "Polygon":
        _polygon(coords, f"{where}.geometry.coordinates")
    elif kind == "MultiPolygon":
        if not isinstance(coords, list) or not coords:
            raise CityFileError(
                f"{where}.geometry.coordinates: a MultiPolygon must be a non-empty list of polygons"
            )
        for i, polygon in enumerate(coords):
            _polygon(polygon, f"{where}.geometry.coordinates.{i}")
    else:
        raise CityFileError(f"{where}.geometry.type: must be Polygon or MultiPolygon, got {str(kind)[:50]!r}")


def _polygonal(geometry: Any, where: str) -> MultiPolygon:
    geom = make_valid(shape(geometry))
    parts = [g for g in getattr(geom, "geoms", [geom]) if isinstance(g, Polygon | MultiPolygon)]
    polys = [p for g in parts for p in getattr(g, "geoms", [g])]
    if not polys:
        raise CityFileError(f"{where}.geometry: must be a Polygon or MultiPolygon with an area")
    return MultiPolygon(polys)


def _label(props: Mapping[str, Any], name_property: str, where: str) -> str:
    label = props.get(name_property)
    field = f"{where}.properties.{name_property}"
    if label is None or label == "":
        raise CityFileError(f"{field}: missing district name")
    if not isinstance(label, str | int):
        raise CityFileError(f"{field}: the district name must be text")
    label = str(label).strip()
    if not label or len(label) > MAX_NAME:
        raise CityFileError(f"{field}: the district name must have 1 to {MAX_NAME} characters")
    if "\x00" in label:
        raise CityFileError(f"{field}: {NUL_RULE}")
    return label


def _population(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise CityFileError(f"{field}: must be a whole number of people")
    try:
        number = float(value)
    except ValueError:
        raise CityFileError(f"{field}: must be a whole number of people") from None
    if not (0 <= number <= MAX_POPULATION) or number != int(number):
        raise CityFileError(f"{field}: must be a whole number of people in [0, {MAX_POPULATION}]")
    return int(number)


def city_from_geojson(
    data: Mapping[str, Any],
    crs: Crs | str = Crs.wgs84,
    *,
    name: str = "City",
    name_property: str = "name",
    population_property: str | None = "population",
    populations: Mapping[str, int] | None = None,
    density_per_km2: float = 5000.0,
) -> City:
    """Districts from a FeatureCollection; coordinates converted from `crs` to WGS-84.

    Every rule is checked before shapely sees a coordinate, and a broken file raises
    `CityFileError` naming the feature and the rule (`features.3.geometry.coordinates.0: a ring
    needs at least 4 positions...`), never a geometry library's exception.
    """
    if data.get("type") != "FeatureCollection" or not isinstance(data.get("features"), list):
        raise CityFileError("type: must be a GeoJSON FeatureCollection of districts")
    districts: list[District] = []
    for i, feature in enumerate(data["features"]):
        where = f"features.{i}"
        if not isinstance(feature, dict):
            raise CityFileError(f"{where}: must be a GeoJSON Feature object")
        props = feature.get("properties") or {}
        if not isinstance(props, dict):
            raise CityFileError(f"{where}.properties: must be an object")
        label = _label(props, name_property, where)
        if any(d.name == label for d in districts):
            raise CityFileError(f"{where}.properties.{name_property}: district '{label}' appears twice")
        if not feature.get("geometry"):
            raise CityFileError(f"{where}.geometry: missing")
        _check_geometry(feature["geometry"], where)
        geometry = _polygonal(transform_geojson(feature["geometry"], crs, Crs.wgs84), where)
        population = (populations or {}).get(label)
        if population is None and population_property and props.get(population_property) is not None:
            population = _population(props[population_property], f"{where}.properties.{population_property}")
        if population is None:
            population = round(area_km2(geometry) * density_per_km2)
        districts.append(District(label, int(population), geometry))
    if not districts:
        raise CityFileError("features: no districts in the file")
    unknown = sorted(set(populations or {}) - {d.name for d in districts})
    if unknown:  # a misspelt or translated name would otherwise fall back to area silently
        names = ", ".join(d.name for d in districts)
        raise CityFileError(f"populations: no district named {', '.join(unknown)} (the file has: {names})")
    return City(name, tuple(districts))


def load_city_file(path: Path, crs: Crs | str = Crs.wgs84, **options: Any) -> City:
    """`city_from_geojson` for a file on disk; the city is named after the file."""
    with path.open(encoding="utf-8") as fh:
        data = json.load(fh)
    return city_from_geojson(data, crs, name=options.pop("name", path.stem), **options)
