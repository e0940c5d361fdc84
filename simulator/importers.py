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

from geo.crs import Crs, transform_geojson
from simulator.city import City, District, area_km2


class CityFileError(ValueError):
    """A boundary file we cannot use; the message names the feature and the rule."""


def _polygonal(geometry: Any, where: str) -> MultiPolygon:
    geom = make_valid(shape(geometry))
    parts = [g for g in getattr(geom, "geoms", [geom]) if isinstance(g, Polygon | MultiPolygon)]
    polys = [p for g in parts for p in getattr(g, "geoms", [g])]
    if not polys:
        raise CityFileError(f"{where}.geometry: must be a Polygon or MultiPolygon")
    return MultiPolygon(polys)


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
    """Districts from a FeatureCollection; coordinates converted from `crs` to WGS-84."""
    if data.get("type") != "FeatureCollection" or not isinstance(data.get("features"), list):
        raise CityFileError("type: must be a GeoJSON FeatureCollection of districts")
    districts = []
    for i, feature in enumerate(data["features"]):
        where = f"features.{i}"
        props = feature.get("properties") or {}
        label = props.get(name_property)
        if not label:
            raise CityFileError(f"{where}.properties.{name_property}: missing district name")
        if not feature.get("geometry"):
            raise CityFileError(f"{where}.geometry: missing")
        geometry = _polygonal(transform_geojson(feature["geometry"], crs, Crs.wgs84), where)
        population = (populations or {}).get(str(label))
        if population is None and population_property and props.get(population_property) is not None:
            population = int(props[population_property])
        if population is None:
            population = round(area_km2(geometry) * density_per_km2)
        districts.append(District(str(label), int(population), geometry))
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
