"""The demo city: Shenzhen's ten districts and 74 streets (街道), people by the 2020 census.

Read from the repository's own copy (`simulator/data/`, see its README: WGS-84, converted once from
the GCJ-02 sources by `scripts/import_shenzhen.py`), never from outside it. A district is the union
of its streets, so districts and streets tile the same land and nobody is placed in the sea or in
Hong Kong. The census counts districts only: a district's people are spread over its streets by land
area (the street file carries no population), which is what the coverage tables' per-street people
then mean.
"""

from __future__ import annotations

import csv
import json
from functools import cache
from pathlib import Path

from shapely.geometry import shape
from shapely.ops import unary_union

from simulator.city import City, District, Street, share_out

DATA = Path(__file__).resolve().parent / "data"
STREETS_FILE = DATA / "shenzhen_streets.geojson"
CENSUS_FILE = DATA / "shenzhen_census_2020.csv"


def read_census(path: Path) -> list[tuple[str, str, int]]:
    """(Chinese name, English name, residents) per district, in the file's order."""
    with path.open(encoding="utf-8", newline="") as fh:
        return [(r["district"], r["district_en"], int(r["population"])) for r in csv.DictReader(fh)]


def city_of(streets: list[dict], census: list[tuple[str, str, int]], name: str = "Shenzhen") -> City:
    """Districts in the census's order, each the union of its street features (GeoJSON, WGS-84)."""
    districts = []
    for zh, en, people in census:
        mine = [f for f in streets if f["properties"]["district"] == zh]
        if not mine:
            raise ValueError(f"census: district {zh} has no streets in the street file")
        shapes = [shape(f["geometry"]) for f in mine]
        residents = share_out(people, [s.area for s in shapes])  # planar area: same latitude band
        district_streets = tuple(
            Street(f["properties"]["street_en"], n, g, f["properties"]["street"])
            for f, g, n in zip(mine, shapes, residents, strict=True)
        )
        districts.append(District(en, people, unary_union(shapes), zh, district_streets))
    unknown = {f["properties"]["district"] for f in streets} - {zh for zh, _, _ in census}
    if unknown:
        raise ValueError(f"streets: districts {sorted(unknown)} have no census figure")
    return City(name, tuple(districts))


@cache
def demo_city() -> City:
    """Shenzhen from the carried data (read once per process: the city is immutable)."""
    features = json.loads(STREETS_FILE.read_text(encoding="utf-8"))["features"]
    return city_of(features, read_census(CENSUS_FILE))
