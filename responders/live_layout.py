"""Where each key of the live index lives: region hash tags, key names, and slot groups.

Every key of a region carries the region (the H3 ancestor at `live_region_resolution`, res 5 by
default: ~250 km², a 2 km query touches 1.8 of them on average) as a Redis Cluster hash tag,
`<prefix>:live:{<region>}:...`, so one region's pages and profile hash share one slot and one
script can change them atomically. The directory of record is split into `live_directory_parts`
hashes by a CRC of the responder id, each under its own tag (`{dir-<k>}`): two million profiles
would otherwise weigh on one shard, and its loss would lose them all at once.

Callers group their work by slot (`slot_of`): on a cluster one script call or `MGET` per slot; on a
single server every key is in "slot 0", so a batch stays one call, as fast as before regions.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Hashable, Iterable, Sequence
from functools import lru_cache
from typing import TypeVar

import numpy as np
from redis.crc import key_slot

from core.redis import Keys
from geo.cells import cell_texts, parents_of, tagged_cell_keys

H = TypeVar("H", bound=Hashable)
SINGLE_SLOT = 0
PAGE_KEYS_MAX = 1 << 18  # page keys remembered (~20 MB): a province's pages at the default resolutions


@lru_cache(maxsize=1 << 16)
def cluster_slot(tag: str) -> int:
    """The Redis Cluster slot of every key carrying `{tag}`."""
    return key_slot(("{" + tag + "}").encode())


def single_slot(tag: str) -> int:
    """A single server has no slots: everything may go in one call."""
    return SINGLE_SLOT


class LiveLayout:
    """Key names of the live index under one deployment prefix, and the slot of each."""

    def __init__(
        self,
        keys: Keys,
        *,
        page_resolution: int,
        region_resolution: int,
        directory_parts: int,
        slot_of: Callable[[str], int],
    ) -> None:
        self.base = keys("live", "")  # what the scripts get as ARGV[1]: "<prefix>:live:"
        self.page_resolution = page_resolution
        self.region_resolution = min(region_resolution, page_resolution)
        self.directory_parts = directory_parts
        self.slot_of = slot_of
        self.regions_key = keys("live", "regions")  # SET of regions ever written: what the sweep walks
        self.rebuild_lease_key = keys("live", "rebuild-lease")
        self._page_keys: dict[int, bytes] = {}
        self._page_slots: dict[int, int] = {}

    # --- regions and pages --------------------------------------------------------------------
    def regions_of(self, pages: np.ndarray) -> np.ndarray:
        """The region (integer H3 id) of each page."""
        return parents_of(pages, self.region_resolution)

    def page_keys(self, pages: np.ndarray) -> list[bytes]:
        """The keys of pages (integer H3 ids). Remembered, with each page's slot: a city has a few
        thousand pages and every query names dozens of them, and looking a key up costs a tenth
        of formatting it (numpy, all the misses at once)."""
        known = self._page_keys
        ids = pages.tolist()
        missing = [i for i in ids if i not in known]
        if missing:
            if len(known) + len(missing) > PAGE_KEYS_MAX:
                known.clear()
                self._page_slots.clear()
            fresh = np.array(missing, dtype=np.uint64)
            regions = self.regions_of(fresh)
            formatted = tagged_cell_keys(self.base, regions, ":page:", fresh)
            known.update(zip(missing, formatted, strict=True))
            tags = (t.decode() for t in cell_texts(regions).tolist())
            self._page_slots.update(zip(missing, map(self.slot_of, tags), strict=True))
        return [known[i] for i in ids]

    def page_keys_by_slot(self, pages: np.ndarray) -> dict[int, list[bytes]]:
        """The keys of pages grouped by slot, in order within each: a cluster read's `MGET`s. The
        remembered slots, because working them out from the regions' names took a fifth of a
        500 m query."""
        groups: dict[int, list[bytes]] = {}
        slots = self._page_slots
        for page, key in zip(pages.tolist(), self.page_keys(pages), strict=True):
            groups.setdefault(slots[page], []).append(key)
        return groups

    def page_key(self, region: str, page: str) -> str:
        return f"{self.base}{{{region}}}:page:{page}"

    def who_key(self, region: str) -> str:
        """The region's profile hash: id → "<page>@<slot>|<mode>|<homes>|<certificates>" of each
        responder whose position it holds."""
        return f"{self.base}{{{region}}}:who"

    def sweep_lease_key(self, tag: str) -> str:
        """The lease of one sweep of a region, or of a directory part's move marks."""
        return f"{self.base}{{{tag}}}:sweep-lease"

    # --- the directory of record ----------------------------------------------------------
    def directory_tag(self, responder_id: str) -> str:
        """The hash tag of the directory part holding a responder's profile."""
        return f"dir-{zlib.crc32(responder_id.encode()) % self.directory_parts}"

    def directory_key(self, tag: str) -> str:
        return f"{self.base}{{{tag}}}:dir"

    def moves_key(self, tag: str) -> str:
        """The marks of moves between regions in flight, beside the directory part (same slot)."""
        return f"{self.base}{{{tag}}}:moves"

    def directory_tags(self) -> list[str]:
        return [f"dir-{k}" for k in range(self.directory_parts)]

    # --- loss markers -----------------------------------------------------------------------
    def marker_keys(self, tag: str) -> tuple[str, str, str]:
        """The generation, epoch and warming keys under a marker tag (`LiveLocationStore.markers`)."""
        return tuple(f"{self.base}{{{tag}}}:{name}" for name in ("generation", "epoch", "warming"))  # type: ignore[return-value]

    def by_slot(self, tags: Sequence[str]) -> dict[int, list[int]]:
        """The positions of `tags` grouped by their slot, in order within each group."""
        groups: dict[int, list[int]] = {}
        for i, tag in enumerate(tags):
            groups.setdefault(self.slot_of(tag), []).append(i)
        return groups


def unique(items: Iterable[H]) -> list[H]:
    """The items without repeats, in first-seen order (the keys a script call declares)."""
    return list(dict.fromkeys(items))
