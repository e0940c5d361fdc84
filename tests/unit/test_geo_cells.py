"""The H3 cover never misses a point inside the radius, including points on cell edges and vertices."""

from __future__ import annotations

import math

import h3
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import Polygon, shape

from geo.cells import (
    cell_boundary_geojson,
    cell_center,
    cell_keys,
    cell_of,
    cell_texts,
    cells_of,
    cover_cells,
    cover_ids,
    page_cover_ids,
    parents_of,
    polygon_cells,
)
from geo.distance import EARTH_RADIUS_M, haversine_m


def destination(lat: float, lng: float, bearing_deg: float, distance_m: float) -> tuple[float, float]:
    """The point `distance_m` from (lat, lng) along `bearing_deg` on the sphere (the direct problem)."""
    d = distance_m / EARTH_RADIUS_M
    b, p1, l1 = math.radians(bearing_deg), math.radians(lat), math.radians(lng)
    p2 = math.asin(math.sin(p1) * math.cos(d) + math.cos(p1) * math.sin(d) * math.cos(b))
    l2 = l1 + math.atan2(math.sin(b) * math.sin(d) * math.cos(p1), math.cos(d) - math.sin(p1) * math.sin(p2))
    return math.degrees(p2), (math.degrees(l2) + 540) % 360 - 180


lats = st.floats(min_value=0, max_value=70)
lngs = st.floats(min_value=-179, max_value=179)
resolutions = st.integers(min_value=7, max_value=10)
radii = st.floats(min_value=10, max_value=4000)


@settings(max_examples=300, deadline=None)
@given(lats, lngs, resolutions, radii, st.floats(0, 360), st.floats(0, 1))
def test_cover_contains_random_points_within_radius(lat, lng, res, radius, bearing, frac) -> None:  # type: ignore[no-untyped-def]
    qlat, qlng = destination(lat, lng, bearing, radius * frac)
    assert cell_of(qlat, qlng, res) in cover_cells(lat, lng, radius, res)


@settings(max_examples=120, deadline=None)
@given(lats, lngs, resolutions, radii)
def test_cover_contains_every_vertex_and_edge_point_within_radius(lat, lng, res, radius) -> None:  # type: ignore[no-untyped-def]
    """Adversarial points: the vertices and edge midpoints of every cell near the circle's rim."""
    cover = cover_cells(lat, lng, radius, res)
    points = _rim_points(lat, lng, radius, res)
    assert all(cell_of(plat, plng, res) in cover for plat, plng in points)
    assert points or radius < h3.average_hexagon_edge_length(res, unit="m")


def _rim_points(lat: float, lng: float, radius: float, res: int) -> list[tuple[float, float]]:
    """The vertices and edge midpoints within `radius` of every cell out to just past the rim."""
    rim = h3.grid_distance(cell_of(lat, lng, res), cell_of(*destination(lat, lng, 0, radius), res))
    points = []
    for cell in h3.grid_disk(cell_of(lat, lng, res), max(1, rim) + 2):
        boundary = h3.cell_to_boundary(cell)
        points += list(boundary) + [
            ((a[0] + b[0]) / 2, (a[1] + b[1]) / 2)
            for a, b in zip(boundary, boundary[1:] + boundary[:1], strict=True)
        ]
    return [(plat, plng) for plat, plng in points if haversine_m(lat, lng, plat, plng) <= radius]


@settings(max_examples=100, deadline=None)
@given(lats, lngs, resolutions, radii, st.integers(0, 5))
def test_cover_from_a_point_on_a_vertex(lat, lng, res, radius, k) -> None:  # type: ignore[no-untyped-def]
    vlat, vlng = h3.cell_to_boundary(cell_of(lat, lng, res))[k % 5]
    cover = cover_cells(vlat, vlng, radius, res)
    for bearing in range(0, 360, 15):
        assert cell_of(*destination(vlat, vlng, bearing, radius), res) in cover


def test_cover_size_grows_with_radius_and_is_not_wasteful() -> None:
    sizes = [len(cover_cells(22.54, 114.05, r, 9)) for r in (500, 1300, 3000)]
    assert sizes == sorted(sizes)
    # The disk of the circle's area at res 9 (~0.1 km²/cell) is ~9 cells for 500 m; allow rim cells.
    assert sizes[0] < 120


def test_polygon_cells_match_centroid_containment() -> None:
    square = Polygon([(114.0, 22.5), (114.05, 22.5), (114.05, 22.55), (114.0, 22.55)])
    cells = polygon_cells(square, 9)
    assert len(cells) > 200
    for cell in list(cells)[:50]:
        lat, lng = cell_center(cell)
        assert 22.5 <= lat <= 22.55 and 114.0 <= lng <= 114.05
    boundary = shape(cell_boundary_geojson(next(iter(cells))))
    assert boundary.is_valid and boundary.area > 0


def test_centres_remembered_for_a_city_leave_nothing_for_its_covers_to_work_out() -> None:
    from geo import cells

    n = cells.remember_centres_within(22.50, 114.00, 22.56, 114.08, 9)
    assert 2_500 < n < 3_500  # 6.7 x 8.2 km widened by 5 km each way: ~300 km² of ~0.1 km² cells
    cells._CENTRES.extra.clear()
    inside = cover_cells(22.53, 114.04, 1500, 9)
    assert cells._CENTRES.extra == {}  # every cell of the cover came from the city's table
    outside = cover_cells(22.80, 114.50, 1500, 9)
    assert len(cells._CENTRES.extra) > 100  # elsewhere, centres are worked out and kept
    cells._CENTRES = cells._Centres()  # the same answers with nothing remembered
    try:
        assert cover_cells(22.53, 114.04, 1500, 9) == inside
        assert cover_cells(22.80, 114.50, 1500, 9) == outside
        assert cells.remember_centres_within(-60, -170, 60, 170, 9) == 0  # a continent: not kept
    finally:
        cells._CENTRES = cells._Centres()


@given(lats, lngs, resolutions)
@settings(max_examples=200, deadline=None)
def test_cell_keys_are_the_prefix_and_each_cells_hex_string(lat: float, lng: float, res: int) -> None:
    ids = cover_ids(lat, lng, 600, res)
    assert cell_keys("deploy:live:rec:", ids) == [
        f"deploy:live:rec:{h3.int_to_str(int(c))}".encode() for c in ids
    ]
    assert cell_keys("k:", ids[:0]) == []


@given(st.lists(st.tuples(lats, lngs), min_size=0, max_size=50), st.integers(min_value=0, max_value=15))
@settings(max_examples=100, deadline=None)
def test_cells_of_many_points_are_h3s_cells_as_text(points: list[tuple[float, float]], res: int) -> None:
    lat = np.array([p[0] for p in points], dtype=np.float64)
    lng = np.array([p[1] for p in points], dtype=np.float64)
    texts = cell_texts(cells_of(lat, lng, res))
    assert [t.decode() for t in texts.tolist()] == [cell_of(a, b, res) for a, b in points]


@given(
    st.lists(st.tuples(st.floats(-89, 89), st.floats(-180, 180)), min_size=0, max_size=50),
    st.integers(min_value=0, max_value=15),
    st.integers(min_value=0, max_value=15),
)
@settings(max_examples=200, deadline=None)
def test_parents_of_many_cells_are_h3s_parents(points: list[tuple[float, float]], res: int, up: int) -> None:
    """The bit arithmetic of `parents_of` against H3's own `cell_to_parent`, anywhere on Earth."""
    parent_res = max(0, res - up)
    lat = np.array([p[0] for p in points], dtype=np.float64)
    lng = np.array([p[1] for p in points], dtype=np.float64)
    ids = cells_of(lat, lng, res)
    expected = [h3.str_to_int(h3.cell_to_parent(h3.int_to_str(c), parent_res)) for c in ids.tolist()]
    assert parents_of(ids, parent_res).tolist() == expected


def _page_of(lat: float, lng: float, res: int, page_res: int) -> int:
    return int(parents_of(np.array([h3.str_to_int(cell_of(lat, lng, res))], dtype=np.uint64), page_res)[0])


@settings(max_examples=300, deadline=None)
@given(lats, lngs, resolutions, radii, st.integers(0, 2), st.floats(0, 360), st.floats(0, 1))
def test_page_cover_holds_the_page_of_every_point_within_radius(
    lat: float, lng: float, res: int, radius: float, up: int, bearing: float, frac: float
) -> None:
    qlat, qlng = destination(lat, lng, bearing, radius * frac)
    pages = page_cover_ids(lat, lng, radius, res, res - up)
    assert _page_of(qlat, qlng, res, res - up) in set(pages.tolist())


@settings(max_examples=100, deadline=None)
@given(lats, lngs, resolutions, radii, st.integers(1, 2))
def test_page_cover_holds_the_pages_of_vertices_and_edge_points_within_radius(
    lat: float, lng: float, res: int, radius: float, up: int
) -> None:
    """Adversarial points: every vertex and edge midpoint of the cells around the circle's rim,
    whose cells are the children that reach farthest out of their parents."""
    pages = set(page_cover_ids(lat, lng, radius, res, res - up).tolist())
    points = _rim_points(lat, lng, radius, res)
    assert all(_page_of(plat, plng, res, res - up) in pages for plat, plng in points)
    assert points or radius < h3.average_hexagon_edge_length(res, unit="m")


@settings(max_examples=300, deadline=None)
@given(st.floats(-89.9, 89.9), st.floats(-180, 180), st.integers(1, 15))
def test_a_cells_centre_lies_in_its_parent(lat: float, lng: float, res: int) -> None:
    """What `page_cover_ids` rests on, one resolution up (two up it does not always hold)."""
    cell = cell_of(lat, lng, res)
    assert cell_of(*h3.cell_to_latlng(cell), res - 1) == h3.cell_to_parent(cell, res - 1)


def test_page_cover_reads_about_as_many_pages_as_the_parents_of_the_cell_cover() -> None:
    """Bounding the pages from their own resolution may read a few more than the parents of the
    exact cell cover would, but not many: each extra page is a key Redis looks up."""
    for radius in (500, 1000, 2000):
        pages = page_cover_ids(22.54, 114.05, radius, 9, 8)
        parents = np.unique(parents_of(cover_ids(22.54, 114.05, radius, 9), 8))
        assert set(parents.tolist()) <= set(pages.tolist())
        assert len(pages) <= 1.5 * len(parents) + 2
    assert page_cover_ids(22.54, 114.05, 800, 9, 9).tolist() == cover_ids(22.54, 114.05, 800, 9).tolist()
