"""How simulator/data/shenzhen_streets.geojson was made from the programme's shared data (run once).

    PYTHONPATH=$PWD .venv/bin/python scripts/import_shenzhen.py ../shared/data simulator/data

Nothing in `make run` or `make test` runs this or reads its source folder: the repository keeps its
output, and this script is the record of how it was produced, so the next import (new boundaries)
gives the same kind of file.

1. Both source files are GCJ-02 (Chinese map datum): every vertex is moved to WGS-84 here, once.
2. Land is where both files draw land (they disagree at the coast: the district file holds 2,126 km²,
   the streets about 2,000, the city's published land area 1,997 km²; both end at Hong Kong). The
   district file decides the district: each of the 74 sub-districts (街道) is clipped to its
   district's polygon, and land of a district no street covers (where the two files draw a district
   border differently) goes to the nearest street of that district. Dapeng (大鹏新区) is carved out
   of Longgang's polygon as its three streets; the street file's 光明新区 is today's 光明区.
3. The tiling is simplified as a coverage (shared edges stay shared) with a tolerance of
   `TOLERANCE_M`; the script refuses to write unless each street keeps ≥ `MIN_KEPT` of its area.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Polygon, mapping, shape
from shapely.ops import unary_union
from shapely.validation import make_valid

from geo.crs import Crs, transform_geojson
from simulator.city import LocalProjection

TOLERANCE_M = 25.0
MIN_KEPT = 0.98
SAMPLE_EVERY_M = 100.0  # boundary points that decide which street a stretch of unclaimed land joins
DIGITS = 6  # ~0.1 m

# The street file's district name → the district file's polygon it lies in.
PARENT = {"光明新区": "光明区", "大鹏新区": "龙岗区"}
DISTRICT_NAMES = {"光明新区": "光明区"}  # the 2018 renaming; 大鹏新区 stays a district of the demo
DISTRICT_EN = {
    "福田区": "Futian",
    "罗湖区": "Luohu",
    "南山区": "Nanshan",
    "宝安区": "Bao'an",
    "龙岗区": "Longgang",
    "盐田区": "Yantian",
    "龙华区": "Longhua",
    "坪山区": "Pingshan",
    "光明区": "Guangming",
    "大鹏新区": "Dapeng",
}
STREET_EN = {
    "南澳": "Nan'ao", "大鹏": "Dapeng", "葵涌": "Kuichong",
    "石井": "Shijing", "龙田": "Longtian", "坑梓": "Kengzi", "坪山": "Pingshan", "马峦": "Maluan",
    "碧岭": "Biling",
    "坪地": "Pingdi", "龙岗": "Longgang", "宝龙": "Baolong", "龙城": "Longcheng", "南湾": "Nanwan",
    "吉华": "Jihua", "坂田": "Bantian", "布吉": "Buji", "平湖": "Pinghu", "横岗": "Henggang",
    "园山": "Yuanshan",
    "东湖": "Donghu", "南湖": "Nanhu", "黄贝": "Huangbei", "东晓": "Dongxiao", "莲塘": "Liantang",
    "桂园": "Guiyuan", "清水河": "Qingshuihe", "翠竹": "Cuizhu", "东门": "Dongmen", "笋岗": "Sungang",
    "沙头角": "Shatoujiao", "海山": "Haishan", "梅沙": "Meisha", "盐田": "Yantian",
    "香蜜湖": "Xiangmihu", "福田": "Futian", "沙头": "Shatou", "莲花": "Lianhua", "梅林": "Meilin",
    "华富": "Huafu", "南园": "Nanyuan", "华强北": "Huaqiangbei", "园岭": "Yuanling", "福保": "Fubao",
    "观澜": "Guanlan", "观湖": "Guanhu", "龙华": "Longhua", "福城": "Fucheng", "大浪": "Dalang",
    "民治": "Minzhi",
    "新湖": "Xinhu", "光明": "Guangming", "马田": "Matian", "公明": "Gongming", "玉塘": "Yutang",
    "凤凰": "Fenghuang",
    "燕罗": "Yanluo", "松岗": "Songgang", "新桥": "Xinqiao", "航城": "Hangcheng", "福永": "Fuyong",
    "石岩": "Shiyan", "新安": "Xin'an", "西乡": "Xixiang", "沙井": "Shajing", "福海": "Fuhai",
    "西丽": "Xili", "粤海": "Yuehai", "南头": "Nantou", "招商": "Zhaoshang", "蛇口": "Shekou",
    "南山": "Nanshan", "沙河": "Shahe", "桃源": "Taoyuan",
}  # fmt: skip
PROJ = LocalProjection(22.6, 114.1)  # metres over the whole city: shapes only, never reach


def polygons(geometry: Any) -> MultiPolygon:
    """The areal part of a geometry as one MultiPolygon (boolean operations leave lines and points)."""
    geom = make_valid(geometry)
    parts = [g for g in getattr(geom, "geoms", [geom]) if isinstance(g, Polygon | MultiPolygon)]
    return MultiPolygon([p for g in parts for p in getattr(g, "geoms", [g]) if p.area > 0])


def read_wgs84(path: Path) -> list[tuple[dict[str, Any], MultiPolygon]]:
    """Features of a GCJ-02 file, in WGS-84, projected to metres."""
    out = []
    for f in json.loads(path.read_text(encoding="utf-8"))["features"]:
        wgs84 = shape(transform_geojson(f["geometry"], Crs.gcj02, Crs.wgs84))
        out.append((f["properties"], polygons(PROJ.forward(wgs84))))
    return out


def fill_gaps(land: Any, streets: list[Any]) -> list[Any]:
    """`streets` (clipped, disjoint) grown over the district's land none of them covers (where the
    two files draw a district border differently): each stretch goes to the street whose boundary
    is nearest (Voronoi cells of points along the boundaries)."""
    gap = land.difference(unary_union(streets))
    if gap.is_empty:
        return streets
    points, owner = [], []
    for i, street in enumerate(streets):
        ring = shapely.segmentize(street.boundary, SAMPLE_EVERY_M)
        xy = shapely.get_coordinates(ring)
        points.append(xy)
        owner += [i] * len(xy)
    xy = np.concatenate(points)
    _, first = np.unique(np.round(xy, 1), axis=0, return_index=True)
    xy, labels = xy[first], np.asarray(owner)[first]
    cells = shapely.voronoi_polygons(shapely.MultiPoint(xy), extend_to=land.buffer(5000), ordered=True)
    grown = []
    for i, street in enumerate(streets):
        claimed = unary_union(list(np.asarray(cells.geoms, dtype=object)[labels == i]))
        grown.append(polygons(street.union(gap.intersection(claimed))))
    return grown


def tile(districts: dict[str, Any], streets: list[tuple[dict[str, Any], Any]]) -> list[tuple[dict, Any]]:
    """The 74 streets clipped to, disjoint within, and covering their district's land: where both
    files draw land. The files disagree at the coast (the district file holds 2,126 km², the streets
    and the city's published land area about 2,000): a worker or an AED must never stand in the sea."""
    land = unary_union([g for _, g in streets])
    out: list[tuple[dict, Any]] = []
    for parent, outline in districts.items():
        mine = [(p, g) for p, g in streets if PARENT.get(p["DISTRICT"], p["DISTRICT"]) == parent]
        taken: Any = Polygon()
        clipped = []
        for _, g in mine:
            piece = polygons(g.intersection(outline).difference(taken))
            taken = taken.union(piece)
            clipped.append(piece)
        out += list(zip([p for p, _ in mine], fill_gaps(outline.intersection(land), clipped), strict=True))
    return out


def noded(geoms: list[Any]) -> list[Any]:
    """The same tiling with neighbours sharing identical edges: boolean operations leave vertices on
    one side of a border that the other lacks. Every boundary is noded together, the faces polygonised
    and each face given to the street that holds most of it."""
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(unary_union([g.boundary for g in geoms]))))
    tree = shapely.STRtree(geoms)
    owned: list[list[Any]] = [[] for _ in geoms]
    for face in faces:
        near = tree.query(face)
        if len(near):
            best = max(near, key=lambda i: geoms[i].intersection(face).area)
            if geoms[best].intersection(face).area > 0.5 * face.area:
                owned[best].append(face)
    return [polygons(unary_union(f)) for f in owned]


def simplified(geoms: list[Any]) -> list[Any]:
    """Coverage simplification: neighbours keep one shared edge, so no slivers open between them."""
    coverage = np.asarray(noded(geoms), dtype=object)
    if not shapely.coverage_is_valid(coverage, gap_width=0.0):
        bad = shapely.coverage_invalid_edges(coverage, gap_width=0.0)
        sys.exit(f"the tiling is not a clean coverage: {sum(not g.is_empty for g in bad)} streets disagree")
    out = shapely.coverage_simplify(coverage, TOLERANCE_M)
    return [polygons(g) for g in out]


def feature(props: dict[str, Any], geometry: Any) -> dict[str, Any]:
    district = DISTRICT_NAMES.get(props["DISTRICT"], props["DISTRICT"])
    lnglat = PROJ.inverse(geometry)
    rounded = shapely.set_precision(lnglat, 10**-DIGITS)
    return {
        "type": "Feature",
        "properties": {
            "street": f"{props['NAME']}街道",
            "street_en": STREET_EN[props["NAME"]],
            "district": district,
            "district_en": DISTRICT_EN[district],
            "area_km2": round(geometry.area / 1e6, 2),
            "source_area_km2": round(float(props["AREA"]), 2),
        },
        "geometry": mapping(polygons(rounded)),
    }


def main(source: Path, target: Path) -> None:
    districts = {p["name"]: g for p, g in read_wgs84(source / "shenzhen_districts_gcj02.geojson")}
    streets = read_wgs84(source / "shenzhen_subdistricts_gcj02.geojson")
    assert len(streets) == 74 and {p["NAME"] for p, _ in streets} == set(STREET_EN)
    tiled = tile(districts, streets)
    simple = simplified([g for _, g in tiled])
    kept = [
        before.intersection(after).area / before.area
        for (_, before), after in zip(tiled, simple, strict=True)
    ]
    if min(kept) < MIN_KEPT:
        worst = tiled[int(np.argmin(kept))][0]["NAME"]
        sys.exit(f"{worst}: simplification kept {min(kept):.3f} of its area (< {MIN_KEPT})")
    print(f"simplified at {TOLERANCE_M:g} m: every street keeps ≥ {min(kept):.4f} of its area")
    for name, outline in districts.items():
        union = unary_union(
            [
                g
                for (p, _), g in zip(tiled, simple, strict=True)
                if PARENT.get(p["DISTRICT"], p["DISTRICT"]) == name
            ]
        )
        print(f"{name}: streets cover {union.intersection(outline).area / outline.area:.4f} of the district")
    features = [feature(p, g) for (p, _), g in zip(tiled, simple, strict=True)]
    data = {
        "type": "FeatureCollection",
        "name": "Shenzhen sub-districts (街道), WGS-84",
        "features": sorted(features, key=lambda f: (f["properties"]["district"], f["properties"]["street"])),
    }
    out = target / "shenzhen_streets.geojson"
    out.write_text(json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"{out}: {len(features)} streets, {out.stat().st_size / 1000:.0f} kB")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
