"""The live index's key layout: keys formatted by numpy equal the plain strings, the regions are
the pages' ancestors, and items are grouped by slot as a cluster needs."""

from __future__ import annotations

import asyncio

import h3
import numpy as np
from redis.crc import key_slot

from core.redis import Keys, gather_limited
from geo.cells import box_area_cells, box_cells, cell_ids, cell_of, tagged_cell_keys
from responders.live_layout import LiveLayout, cluster_slot, single_slot


def layout(slot_of=cluster_slot) -> LiveLayout:  # type: ignore[no-untyped-def]
    return LiveLayout(Keys("rc"), page_resolution=8, region_resolution=5, directory_parts=16, slot_of=slot_of)


def test_page_keys_carry_their_region_as_hash_tag() -> None:
    pages = [h3.cell_to_parent(cell_of(22.5 + i * 0.01, 114.0 + i * 0.013, 9), 8) for i in range(50)]
    keys = layout().page_keys(cell_ids(pages))
    assert [k.decode() for k in keys] == [f"rc:live:{{{h3.cell_to_parent(p, 5)}}}:page:{p}" for p in pages]
    assert tagged_cell_keys("x:", cell_ids(pages[:1]), "/", cell_ids(pages[1:2])) == [
        f"x:{{{pages[0]}}}/{pages[1]}".encode()
    ]
    # a page's key and its region's profile hash are in one slot: one script may change both
    for page, k in zip(pages, keys, strict=True):
        who = layout().who_key(h3.cell_to_parent(page, 5))
        assert key_slot(k) == key_slot(who.encode()) == cluster_slot(h3.cell_to_parent(page, 5))


def test_items_are_grouped_by_slot_in_order_and_a_single_server_has_one_group() -> None:
    tags = ["85411cabfffffff", "85411cbbfffffff", "dir-3", "85411cabfffffff"]
    groups = layout().by_slot(tags)
    assert sorted(i for rows in groups.values() for i in rows) == [0, 1, 2, 3]
    assert [0, 3] in groups.values()
    assert layout(single_slot).by_slot(tags) == {0: [0, 1, 2, 3]}


def test_page_keys_are_grouped_by_their_slot_as_read_and_as_remembered() -> None:
    """A cluster read's MGETs: every page's key under its own slot, in order, the first time (keys
    being formatted) and the next (keys and slots remembered); a single server's all in one."""
    pages = cell_ids(
        [h3.cell_to_parent(cell_of(22.5 + i * 0.02, 114.0 + i * 0.027, 9), 8) for i in range(40)]
    )
    cluster = layout()
    keys = layout().page_keys(pages)
    expected: dict[int, list[bytes]] = {}
    for key in keys:
        expected.setdefault(key_slot(key), []).append(key)
    assert len(expected) > 3
    assert cluster.page_keys_by_slot(pages[:10]) == {
        s: [k for k in ks if k in keys[:10]] for s, ks in expected.items() if set(ks) & set(keys[:10])
    }
    assert cluster.page_keys_by_slot(pages) == expected  # ten remembered, thirty new
    assert cluster.page_keys_by_slot(pages) == expected  # all remembered
    assert layout(single_slot).page_keys_by_slot(pages) == {0: keys}


def test_the_directory_part_of_an_id_is_stable_and_spread() -> None:
    parts = [layout().directory_tag(f"responder-{i}") for i in range(1600)]
    assert parts[:3] == [layout().directory_tag(f"responder-{i}") for i in range(3)]
    counts = np.unique(parts, return_counts=True)[1]
    assert len(counts) == 16 and counts.min() > 60  # ~100 each


def test_a_box_reads_every_page_a_position_inside_can_be_in() -> None:
    rng = np.random.default_rng(4)
    south, west, north, east = 22.50, 114.00, 22.56, 114.07
    pages = set(box_cells(south, west, north, east, 8).tolist())
    lats, lngs = rng.uniform(south, north, 3000), rng.uniform(west, east, 3000)
    held = {h3.str_to_int(h3.cell_to_parent(cell_of(a, b, 9), 8)) for a, b in zip(lats, lngs, strict=True)}
    assert held <= pages
    assert 0.5 < len(pages) / box_area_cells(south, west, north, east, 8) < 2.5
    assert len(box_cells(22.5, 114.0, 22.5, 114.0, 8)) == 1  # a point still reads its page


async def test_a_fan_out_keeps_order_and_never_has_more_calls_in_flight_than_allowed() -> None:
    in_flight, most = 0, 0

    async def call(i: int) -> int:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.001 * (i % 3))
        in_flight -= 1
        return i

    assert await gather_limited((call(i) for i in range(100)), limit=7) == list(range(100))
    assert most == 7
