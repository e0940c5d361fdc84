"""The live location store: each on-duty responder's last position, H3-indexed in Redis, on a
single server or a Redis Cluster (the same code; `responders.live_layout` names the keys).

Layout (every key under the deployment's prefix; `{R}` is a region: the H3 ancestor of the
position at `live_region_resolution`, a Redis Cluster hash tag, so a region's keys share a slot):

* `live:{dir-<k>}:dir` — the directory of record, split into `live_directory_parts` HASHes by a
  CRC of the id: responder id → `"<region>|<profile mode>|<homes>|<certificates>"`. A field exists
  exactly while the responder is active and on duty; `<region>` names the region holding the
  position ("" before the first). `<homes>` is 1 when their tier allows alerts in homes; the
  certificates use the compact form of `responders.availability.encode_certificates`.
* `live:{dir-<k>}:moves` — HASH beside each directory part (same slot): id → the marks of its
  moves between regions, `"<region>:<ms> ..."`: a move's target while it runs, the region it left
  until that region let go. Every region that may hold a copy is the directory's or a marked one.
* `live:{R}:who` — HASH, the region's profiles: id → `"<page>@<slot>[!]|<mode>|<homes>|<certs>"`
  for each responder whose position the region holds (the page and a hint of the record's place
  in it; `!` while the move that wrote it has not confirmed it). The ingest reads the profile
  here, in the fix's own slot: a fix that stays in its region (nearly all of them: ~8 km across
  at res 5) never touches the directory.
* `live:{R}:page:<h3 page>` — STRING: the records of the dispatchable responders in the cells of
  one page, back to back (`responders.records`).
* `live:regions` — SET of the regions ever written: what the sweeper walks.
* `live:{mark-<i>}:generation`, `:epoch`, `:warming` — loss markers, one set per shard (a single
  server is one). A rebuild writes a fresh token to every epoch, rebuilds the directory from
  Postgres, then sets each generation to the token where the epoch still holds it. A shard that
  lost its data (restarted without persistence, flushed) lost its marker: `profiles_lost()` is true
  when ANY shard's generation is missing or differs from its epoch, so a loss of the shard holding
  some directory parts or some regions' positions is repaired, and `warming()` tells the dispatcher
  that positions are streaming back. A failover to a replica keeps the data and the marker: no
  needless rebuild. Pages of earlier layouts (`live:page:`, `live:rec:`, `live:cell:`, `live:who`)
  are dropped at start-up (`drop_legacy_cells`); positions come back with the phones' next fixes.

The cell index is at `h3_resolution` (9 by default): a responder's cell is the H3 cell of its stored
position. A page is that cell's ancestor `live_page_levels` resolutions up (the 7 res-9 children of
a res-8 cell by default). A query reads the pages of every cell that can hold a point of its disk
(`geo.cells.page_cover_ids`) with one `MGET` per slot, on the store's own connections (one on a single
server, `core.redis.ReadConnection`; one per node on a cluster, `core.cluster_reads`, a node's slots
pipelined and the nodes in parallel), and filters them with numpy. Pages,
because Redis pays about a microsecond for every key it looks up.

Guarantees. Within a region every change is one Lua script (`responders.live_scripts`): a move
between pages is atomic, an out-of-order fix never overwrites a newer one, going off duty removes
the profile and the position in one step. A fix landing in another region (or the first after
going on duty or being swept) moves the responder in steps across slots:

1. mark the move's target in the directory's marks, and read the directory (profile, old region)
   in the same call; then the old record's time: a fix not newer is stale;
2. insert the position in the new region with the directory's profile, flagged unconfirmed: the
   phone's fixes in that region are then sent to the directory (step 1) rather than stored in
   place, until the move confirms it;
3. compare-and-set the directory to the new region, only if the profile is still exactly the one
   read; the mark now names the region left. If the directory changed meanwhile (a new profile,
   another move), the move takes back its own copy (only if still the one it wrote) and starts
   again from step 1, up to `MOVE_ATTEMPTS` times; if the responder went off duty, it takes back
   whatever the new region holds;
4. the old region drops its record and the new copy is confirmed (in parallel);
5. the mark goes.

Going on duty's first fix is the same without an old region (four round trips: the commit takes
the mark). A fix staying in its region is one script call in its own slot and touches neither
the directory nor the marks: the marks cost nothing there. A move pays six round trips, one more
than before the marks (step 5), for the few fixes that cross a region border.

So, restated honestly for moves between regions:

* Never twice: while a move runs two regions hold the responder; every query keeps one row per
  responder, the newest fix (`_newest_per_responder`), so a reader sees them at their position
  before or after the move, never both.
* Never none: the new copy exists before the old one goes. On a single server a query is one
  atomic `MGET`, so this is exact. On a cluster the slots are read in parallel, at instants a
  fraction of a millisecond apart: a query whose two reads straddle a whole move (several round
  trips) could miss that responder once; the next query finds them.
* Out-of-order dropped: a fix is checked against the kept record in its region, and a moving fix
  against the old region's record before it moves. Two fixes of one phone in flight together, one
  staying and one leaving, can overtake each other across regions (the older may win until the
  phone's next fix, seconds later).
* Off duty wins: going off duty deletes the directory entry and the marks in one call, then drops
  the responder from the region the entry named and from every marked region. A move racing it
  either began after it (finds no profile: stores nothing), or marked its target before it (the
  removal drops there; a copy written after that fails the compare-and-set, "off duty", and is
  taken back), or committed before it (its region is the one the removal cleans, and the region
  it left is still marked). A worker dying anywhere in a move leaves its mark, so a later removal
  still cleans every copy; its unconfirmed copy keeps the phone's fixes going through the
  directory (refused once off duty, never stored in place), and the phone's next fix finishes the
  move. What remains: a worker dying between its insert and its commit at the very moment the
  removal runs between its mark and its insert (the removal dropped nothing there yet, and then
  deleted the mark): that copy stays until it ages past `staleness_s` (queries never return it
  after that; the sweeper then drops it), and the phone's fixes cannot refresh it (unconfirmed).
* Dead workers: a mark older than `MOVE_MARK_S` (60 s; a move takes milliseconds) was left by a
  worker that died. The sweeper (`sweep_moves`, per directory part under a lease) reads the copy's
  time in the marked region, then asks the directory, and drops the copy (only if unchanged) when
  the directory neither names that region nor has a fresh move to it; the mark then goes. Until
  then the older of the two copies is never picked by a query.
* Staleness on read: a query never returns a position older than the limit, whatever the
  sweeper's lag; the sweeper (once per region per period, under a lease) only bounds memory.
"""

from __future__ import annotations

import asyncio
import math
import secrets
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from itertools import repeat
from typing import NamedTuple, Protocol

import numpy as np
from redis.asyncio import RedisCluster
from redis.commands.core import AsyncScript

from core.cluster_reads import ClusterReads
from core.coalesce import Coalescer
from core.redis import Keys, ReadConnection, RedisClient, gather_limited
from geo.cells import box_cells, cell_ids, cell_of, cell_texts, cells_of, page_cover_ids, parents_of
from geo.distance import haversine_m_np
from responders import live_scripts
from responders.availability import CertificatePeriod, decode_certificates, encode_certificates, qualified_at
from responders.live_layout import LiveLayout, cluster_slot, single_slot, unique
from responders.records import (
    FIX_DTYPE,
    MODE_CODES,
    MODES,
    NO_ACCURACY,
    PROFILE_MODE,
    RECORD_DTYPE,
    decode_ids,
    padded_id,
    qualified_mask,
)


class StoreSettings(Protocol):
    h3_resolution: int
    live_page_levels: int
    live_region_resolution: int
    live_directory_parts: int
    staleness_s: float


class Outcome(StrEnum):
    """What happened to one location update."""

    stored = "stored"
    stale = "stale"  # older than the stored position (out of order) or than the staleness limit
    not_on_duty = "not_on_duty"  # off duty, deactivated or unknown: the position is not kept
    not_qualified = "not_qualified"  # on duty but no certificate valid at that time


_OUTCOME_CODES = {
    "1": Outcome.stored,
    "2": Outcome.stale,
    "3": Outcome.not_on_duty,
    "4": Outcome.not_qualified,
}
_OUTCOMES = {outcome: code for code, outcome in _OUTCOME_CODES.items()}
_NOT_HERE = "5"  # the ingest script's answer for a fix its region does not hold: ask the directory
INGEST_CHUNK = 1000  # fixes per script call: ~10 ms of Redis time, so queries interleave
MOVE_ATTEMPTS = 3  # a move between regions that keeps losing races is retried this often
MOVE_MARK_S = 60.0
"""A move's mark older than this was left by a worker that died mid-move (a move takes
milliseconds): the sweeper drops the copy it stood for, unless the directory accounts for it."""


class LiveProfile(NamedTuple):
    """What the live store keeps of an on-duty responder besides the position."""

    responder_id: str
    mode: str
    certificates: Sequence[CertificatePeriod]
    homes: bool = False
    """The tier allows alerts in homes: found by residential incidents' queries too."""


@dataclass(frozen=True, slots=True)
class PositionFix:
    """One validated position report in WGS-84; `ts` in epoch seconds; `mode` None = profile's."""

    responder_id: str
    lat: float
    lng: float
    ts: float
    accuracy_m: float | None = None
    mode: str | None = None


def _page(profile: str) -> str:
    """The page named by a profile (`"<page>@<slot>|<mode>|<certificates>"`), or ""."""
    return profile.split("|", 1)[0].split("@", 1)[0]


class _SlotQueues:
    """A batch's packed fixes queued by the slot of their region, each with its place in the
    batch, until a slot holds a full script call (`INGEST_CHUNK` fixes) or the batch ends."""

    def __init__(self, slot_of: Callable[[str], int]) -> None:
        self._slot_of = slot_of
        self._rows: dict[int, list[np.ndarray]] = {}
        self._fixes: dict[int, list[np.ndarray]] = {}
        self._sizes: dict[int, int] = {}

    def add(self, fixes: np.ndarray, first: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """Queue packed fixes, the batch's from `first` on; returns the calls now full, each as
        (places in the batch, fixes), in the batch's order within a slot."""
        regions, region_of = np.unique(fixes["region"], return_inverse=True)
        slots = np.array([self._slot_of(r.decode()) for r in regions.tolist()])[region_of]
        order = np.argsort(slots, kind="stable")
        full: list[tuple[np.ndarray, np.ndarray]] = []
        for part in np.split(order, np.flatnonzero(np.diff(slots[order])) + 1):
            slot = int(slots[part[0]])
            self._queue(slot, part + first, fixes[part])
            if self._sizes[slot] >= INGEST_CHUNK:  # under two calls' worth: a chunk adds at most one
                rows, queued = self._take(slot)
                full.append((rows[:INGEST_CHUNK], queued[:INGEST_CHUNK]))
                if len(rows) > INGEST_CHUNK:
                    self._queue(slot, rows[INGEST_CHUNK:], queued[INGEST_CHUNK:])
        return full

    def rest(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """What is still queued: one call per slot (each under `INGEST_CHUNK` fixes)."""
        return [self._take(slot) for slot in list(self._rows)]

    def _queue(self, slot: int, rows: np.ndarray, fixes: np.ndarray) -> None:
        self._rows.setdefault(slot, []).append(rows)
        self._fixes.setdefault(slot, []).append(fixes)
        self._sizes[slot] = self._sizes.get(slot, 0) + len(rows)

    def _take(self, slot: int) -> tuple[np.ndarray, np.ndarray]:
        del self._sizes[slot]
        return np.concatenate(self._rows.pop(slot)), np.concatenate(self._fixes.pop(slot))


class Box(NamedTuple):
    """A map's view in WGS-84 degrees."""

    south: float
    west: float
    north: float
    east: float

    def holds(self, records: np.ndarray) -> np.ndarray:
        lat, lng = records["lat"], records["lng"]
        return (self.south <= lat) & (lat <= self.north) & (self.west <= lng) & (lng <= self.east)


def _page_ids(lat: np.ndarray, lng: np.ndarray, resolution: int, page_resolution: int) -> np.ndarray:
    """The pages (integer H3 ids) of positions as stored: their cells' ancestors."""
    return parents_of(cells_of(lat, lng, resolution), page_resolution)


@dataclass(frozen=True, slots=True)
class FixColumns:
    """Validated fixes as columns: the shape a gateway batch takes, packed by numpy, not per fix.

    `ids` are record ids (`records.padded_id`, `records.uuid_ids`); positions are WGS-84, `ts` in
    epoch seconds, `accuracy_m` NaN where unknown, `mode` a `records.MODE_CODES` code or
    `records.PROFILE_MODE` (the profile's).
    """

    ids: np.ndarray
    lat: np.ndarray
    lng: np.ndarray
    ts: np.ndarray
    accuracy_m: np.ndarray
    mode: np.ndarray

    @classmethod
    def build(
        cls,
        ids: np.ndarray,
        lat: np.ndarray,
        lng: np.ndarray,
        ts: np.ndarray,
        accuracy_m: Sequence[float | None],
        mode: Sequence[str | None],
    ) -> FixColumns:
        """Columns from plain values: None for an unknown accuracy or the profile's mode."""
        return cls(
            ids=ids,
            lat=np.asarray(lat, dtype=np.float64),
            lng=np.asarray(lng, dtype=np.float64),
            ts=np.asarray(ts, dtype=np.float64),
            accuracy_m=np.array([np.nan if a is None else a for a in accuracy_m], dtype=np.float64),
            mode=np.array([MODE_CODES.get(m, PROFILE_MODE) if m else PROFILE_MODE for m in mode], np.uint8),
        )

    @classmethod
    def of(cls, fixes: Sequence[PositionFix]) -> FixColumns:
        """Single fixes as columns; raises `ValueError` for an id a record cannot carry."""
        return cls.build(
            np.array([padded_id(f.responder_id) for f in fixes], dtype=RECORD_DTYPE["id"]),
            np.array([f.lat for f in fixes]),
            np.array([f.lng for f in fixes]),
            np.array([f.ts for f in fixes]),
            [f.accuracy_m for f in fixes],
            [f.mode for f in fixes],
        )

    def __len__(self) -> int:
        return len(self.ids)

    def part(self, rows: slice) -> FixColumns:
        return FixColumns(*(getattr(self, name)[rows] for name in self.__slots__))

    def packed(self, resolution: int, layout: LiveLayout) -> np.ndarray:
        """The fixes as the ingest script reads them (`records.FIX_DTYPE`), each with the region and
        the page of its H3 cell. The cell is that of the position as stored, so a record's cell is
        a function of the record alone."""
        lat, lng = np.round(self.lat, 6), np.round(self.lng, 6)  # ~0.1 m: what a phone's fix can claim
        pages = _page_ids(lat, lng, resolution, layout.page_resolution)
        batch = np.empty(len(self), dtype=FIX_DTYPE)
        batch["id"] = self.ids
        batch["region"] = cell_texts(layout.regions_of(pages))
        batch["page"] = cell_texts(pages)
        batch["lat"] = lat
        batch["lng"] = lng
        batch["ts_ms"] = np.floor(self.ts * 1000)
        batch["accuracy_m"] = np.where(np.isnan(self.accuracy_m), NO_ACCURACY, np.round(self.accuracy_m))
        batch["mode"] = self.mode
        return batch


@dataclass(frozen=True, slots=True)
class LivePosition:
    responder_id: str
    lat: float
    lng: float
    ts: float
    accuracy_m: float | None
    mode: str
    resolution: int  # the cell index's

    @property
    def cell(self) -> str:
        """The H3 cell of the position at the index resolution, worked out when asked: the map
        reads every position and none of their cells."""
        return cell_of(self.lat, self.lng, self.resolution)


class NearbyResponder(NamedTuple):
    """A dispatchable responder near a point, with the exact great-circle distance."""

    responder_id: str
    lat: float
    lng: float
    ts: float
    mode: str
    accuracy_m: float | None
    distance_m: float


@dataclass(frozen=True, slots=True)
class Nearby:
    """The answer to a nearby query, nearest first, one list per field.

    Columns, because a 2 km query finds hundreds of people and building an object for each cost
    about a tenth of the query; the dispatcher makes its own candidates straight from the lists.
    Iterating yields `NearbyResponder` rows for callers who want them.
    """

    responder_id: list[str]
    lat: list[float]
    lng: list[float]
    ts: list[float]
    mode: list[str]
    accuracy_m: list[float | None]
    distance_m: list[float]

    @classmethod
    def empty(cls) -> Nearby:
        return cls([], [], [], [], [], [], [])

    def __len__(self) -> int:
        return len(self.responder_id)

    def __iter__(self) -> Iterator[NearbyResponder]:
        columns = (
            self.responder_id,
            self.lat,
            self.lng,
            self.ts,
            self.mode,
            self.accuracy_m,
            self.distance_m,
        )
        return map(NearbyResponder, *columns)


class _Columns(NamedTuple):
    """Records as plain Python columns, ready to be zipped into the callers' rows."""

    ids: list[str]
    lat: list[float]
    lng: list[float]
    ts: list[float]  # seconds
    accuracy_m: list[float | None]  # None: unknown
    mode: list[str]

    @classmethod
    def of(cls, records: np.ndarray) -> _Columns:
        return cls(
            decode_ids(records["id"]),
            records["lat"].tolist(),
            records["lng"].tolist(),
            (records["ts_ms"] / 1000).tolist(),
            [None if a == NO_ACCURACY else a for a in records["accuracy_m"].tolist()],
            [MODES[m] for m in records["mode"].tolist()],
        )


class LiveLocationStore:
    """Last positions of on-duty responders and the H3 index the dispatcher's matching walks."""

    def __init__(self, redis: RedisClient, keys: Keys, settings: StoreSettings) -> None:
        self.redis = redis
        self.cluster = isinstance(redis, RedisCluster)
        self.resolution = settings.h3_resolution
        self.page_resolution = max(0, settings.h3_resolution - settings.live_page_levels)
        self.staleness_s = settings.staleness_s
        self.layout = LiveLayout(
            keys,
            page_resolution=self.page_resolution,
            region_resolution=settings.live_region_resolution,
            directory_parts=settings.live_directory_parts,
            slot_of=cluster_slot if self.cluster else single_slot,
        )
        # earlier layouts, dropped at start-up: a hash per cell, records before tiers, pages and
        # profiles before regions
        self.legacy_prefixes = [keys("live", name, "") for name in ("cell", "rec", "page")]
        self.legacy_keys = [keys("live", name) for name in ("who", "generation", "warming")]
        self._ingest = redis.register_script(live_scripts.INGEST)
        self._times = redis.register_script(live_scripts.TIMES)
        self._drop = redis.register_script(live_scripts.DROP)
        self._set_profile = redis.register_script(live_scripts.SET_PROFILE)
        self._sweep = redis.register_script(live_scripts.SWEEP)
        self._directory_get = redis.register_script(live_scripts.DIRECTORY_GET)
        self._directory_set = redis.register_script(live_scripts.DIRECTORY_SET)
        self._directory_delete = redis.register_script(live_scripts.DIRECTORY_DELETE)
        self._directory_begin_move = redis.register_script(live_scripts.DIRECTORY_BEGIN_MOVE)
        self._directory_commit = redis.register_script(live_scripts.DIRECTORY_COMMIT)
        self._directory_unmark = redis.register_script(live_scripts.DIRECTORY_UNMARK)
        self._directory_stale_marks = redis.register_script(live_scripts.DIRECTORY_STALE_MARKS)
        self._directory_stale_check = redis.register_script(live_scripts.DIRECTORY_STALE_CHECK)
        self._confirm = redis.register_script(live_scripts.CONFIRM)
        self._mark_rebuilt = redis.register_script(live_scripts.MARK_REBUILT)
        self._single_fixes: Coalescer[PositionFix, Outcome] = Coalescer(self.ingest, INGEST_CHUNK)
        # the hot MGET on connections of its own: one on a single server, one per node on a cluster
        self._pages = ClusterReads(redis) if isinstance(redis, RedisCluster) else ReadConnection(redis)

    async def aclose(self) -> None:
        """Close the store's own read connections (the shared client is its owner's to close)."""
        await self._pages.aclose()

    # --- calls grouped by slot ---------------------------------------------------------------
    async def _per_slot(
        self,
        script: AsyncScript,
        tags: Sequence[str],
        keys: Sequence[str],
        items: Sequence[Sequence[str]],
        head: Sequence[str | int] = (),
    ) -> list[str]:
        """Run `script` over items (the i-th under hash tag `tags[i]`, touching key `keys[i]`): one
        call per slot, concurrently (a cluster pipeline cannot carry EVALSHA). The reply has one
        entry per item, in order; each call gets `base, *head, *its items' arguments`."""

        async def call(rows: list[int]) -> tuple[list[int], Sequence[str]]:
            args = [self.layout.base, *head, *(a for r in rows for a in items[r])]
            return rows, await script(keys=unique([keys[r] for r in rows]), args=args)

        out = [""] * len(tags)
        await self.ready()
        for rows, reply in await gather_limited(map(call, self.layout.by_slot(tags).values())):
            for r, value in zip(rows, reply, strict=True):
                out[r] = value
        return out

    async def ready(self) -> None:
        """A cluster client learns the slots on first use; several first uses at once (a fan-out)
        each start that and break each other's connections (redis-py 8.1), so learn them first."""
        if isinstance(self.redis, RedisCluster):
            await self.redis.initialize()

    async def _directory(
        self,
        script: AsyncScript,
        ids: Sequence[str],
        *extra: Sequence[str],
        head: Sequence[str | int] = (),
    ) -> list[str]:
        """A directory script over responders (each item: tag, id, then `extra`'s i-th values)."""
        tags = [self.layout.directory_tag(r) for r in ids]
        keys = [self.layout.directory_key(t) for t in tags]
        items = [[t, r, *(e[i] for e in extra)] for i, (t, r) in enumerate(zip(tags, ids, strict=True))]
        return await self._per_slot(script, tags, keys, items, head)

    async def _in_regions(
        self,
        script: AsyncScript,
        regions: Sequence[str],
        ids: Sequence[str],
        *extra: Sequence[str],
        head: Sequence[str | int] = (),
    ) -> list[str]:
        """A region script over responders (each item: region, id, then `extra`'s i-th values)."""
        keys = [self.layout.who_key(g) for g in regions]
        items = [[g, r, *(e[i] for e in extra)] for i, (g, r) in enumerate(zip(regions, ids, strict=True))]
        return await self._per_slot(script, regions, keys, items, head)

    # --- duty and profile ------------------------------------------------------------------
    async def set_profile(
        self,
        responder_id: str,
        mode: str,
        certificates: Sequence[CertificatePeriod],
        now_s: float | None = None,
        *,
        homes: bool = False,
    ) -> None:
        """Mark on duty (or refresh mode, certificates and tier); drops the position if no longer
        qualified. `homes`: the tier allows alerts in homes (`public_and_homes`)."""
        await self.set_profiles([LiveProfile(responder_id, mode, certificates, homes)], now_s)

    async def set_profiles(
        self,
        profiles: Sequence[LiveProfile | tuple[str, str, Sequence[CertificatePeriod]]],
        now_s: float | None = None,
    ) -> None:
        """`set_profile` for many (start-up resync, bulk duty changes), a thousand per call. A
        profile given as (id, mode, certificates) is for public places only.

        The directory is written first, then the region holding the position applies what the
        directory now says. Two changes of one responder at once could reach the region in the
        other order, so the directory is read again after applying and what differs is applied
        again: the last writer always applies the last profile."""
        now = int(time.time() if now_s is None else now_s)
        for start in range(0, len(profiles), 1000):
            ids, tails = [], []
            for profile in profiles[start : start + 1000]:
                responder_id, mode, certificates, homes = LiveProfile(*profile)
                padded_id(responder_id)  # refuse an id a record cannot carry, before storing
                ids.append(responder_id)
                tails.append(f"|{mode}|{'1' if homes else '0'}|{encode_certificates(certificates)}")
            applied = await self._directory(self._directory_set, ids, tails)
            while ids:
                await self._apply_profiles(ids, applied, now)
                current = await self._directory(self._directory_get, ids)
                changed = [i for i, (a, c) in enumerate(zip(applied, current, strict=True)) if c and a != c]
                ids, applied = [ids[i] for i in changed], [current[i] for i in changed]

    async def _apply_profiles(self, ids: Sequence[str], profiles: Sequence[str], now: int) -> None:
        """Directory profiles applied to the regions holding the positions (none: nothing to do)."""
        held = [i for i, p in enumerate(profiles) if not p.startswith("|")]
        if held:
            regions = [profiles[i].split("|", 1)[0] for i in held]
            await self._in_regions(
                self._set_profile, regions, [ids[i] for i in held], [profiles[i] for i in held], head=[now]
            )

    async def remove(self, responder_id: str) -> bool:
        """Off duty, deactivated: the profile and the position go at once (positions are private).
        The directory first, so a racing move between regions fails and takes its copy back; then
        every region that may hold a copy: the one the profile names and those of the moves'
        marks (a move whose worker died after writing its copy, one whose old region has not let
        go yet)."""
        (entry,) = await self._directory(self._directory_delete, [responder_id])
        old, _, marks = entry.partition("\n")
        regions = [r for r in unique([old.split("|", 1)[0], *_marked_regions(marks)]) if r]
        if regions:
            await self._in_regions(self._drop, regions, [responder_id] * len(regions), [""] * len(regions))
        return bool(old)

    async def is_on_duty(self, responder_id: str) -> bool:
        tag = self.layout.directory_tag(responder_id)
        return bool(await self.redis.hexists(self.layout.directory_key(tag), responder_id))

    async def on_duty_count(self) -> int:
        keys = map(self.layout.directory_key, self.layout.directory_tags())
        await self.ready()
        return sum(await asyncio.gather(*(self.redis.hlen(k) for k in keys)))

    async def profile(self, responder_id: str) -> str | None:
        """The directory's profile of an on-duty responder: `"<region>|<mode>|<homes>|<certs>"`."""
        (value,) = await self._directory(self._directory_get, [responder_id])
        return value or None

    # --- loss markers ----------------------------------------------------------------------
    async def markers(self) -> list[str]:
        """The hash tags of the loss markers: one per primary, in a slot it serves (a single
        server: one). After a resharding a primary may have none yet: it then reads as lost and
        the next rebuild marks it, which is safe (a rebuild is idempotent)."""
        if not isinstance(self.redis, RedisCluster):
            return ["mark-0"]
        await self.ready()
        primaries = {node.name for node in self.redis.get_primaries()}
        slots, owners = self.redis.nodes_manager.slots_cache, dict[str, str]()
        for i in range(1 << 16):
            nodes = slots.get(cluster_slot(f"mark-{i}"))
            if nodes and nodes[0].name in primaries:
                owners.setdefault(nodes[0].name, f"mark-{i}")
            if len(owners) == len(primaries):
                break
        return sorted(owners.values())

    async def _marker_values(self, names: tuple[int, int]) -> list[tuple[str | None, str | None]]:
        """Two of each marker's keys (0 generation, 1 epoch, 2 warming), per shard in parallel."""

        async def read(tag: str) -> tuple[str | None, str | None]:
            keys = self.layout.marker_keys(tag)
            first, second = await self.redis.mget(keys[names[0]], keys[names[1]])
            return first, second

        return list(await asyncio.gather(*map(read, await self.markers())))

    async def profiles_lost(self) -> bool:
        """True when Redis lost data since the last rebuild (a shard restarted or was flushed): resync.

        Judged by the markers, not by the profile hashes: a duty change after a restart recreates
        a directory part with one profile, and every other responder's fix was then refused.
        """
        return any(gen is None or gen != epoch for gen, epoch in await self._marker_values((0, 1)))

    async def begin_rebuild(self) -> str:
        """Start a rebuild: a fresh epoch on every shard; returns it for `mark_rebuilt`."""
        token = secrets.token_hex(8)
        tags = await self.markers()
        await asyncio.gather(*(self.redis.set(self.layout.marker_keys(t)[1], token) for t in tags))
        return token

    async def mark_rebuilt(self, token: str, *, warmup_s: float = 0.0) -> None:
        """Record a finished rebuild begun with `token` (a shard that lost its data meanwhile lost
        the epoch too and still reads as lost); for `warmup_s` positions count as streaming back."""
        warmup_ms = math.ceil(warmup_s * 1000)
        tags = await self.markers()
        await asyncio.gather(
            *(self._mark_rebuilt(keys=self.layout.marker_keys(t), args=[token, warmup_ms]) for t in tags)
        )

    async def warming(self) -> bool:
        """True while positions are not all here after Redis lost them: the loss is not repaired
        yet (a shard without its generation marker), or it was repaired less than `live_warmup_s`
        ago and phones are still sending them again. An empty answer then does not mean nobody
        is there."""
        return any(gen is None or warm is not None for gen, warm in await self._marker_values((0, 2)))

    # --- positions ---------------------------------------------------------------------------
    async def ingest(self, fixes: Sequence[PositionFix]) -> list[Outcome]:
        """Store single fixes (a phone's, a test's); one outcome per fix, in order."""
        columns = FixColumns.of(fixes)
        step = INGEST_CHUNK
        return await self.ingest_chunks(
            columns.part(slice(i, i + step)) for i in range(0, len(columns), step)
        )

    async def ingest_chunks(self, chunks: Iterable[FixColumns]) -> list[Outcome]:
        """Store fixes arriving in chunks of at most `INGEST_CHUNK`; one outcome per fix, in order.

        The fixes queue by the slot of their region (`_SlotQueues`, one queue on a single server)
        and a slot's script call, atomic on the server, goes out as soon as it holds
        `INGEST_CHUNK` fixes: Redis stores one call while this process prepares the next chunk
        (`chunks` may be a generator that validates or converts as it goes), so a city's
        5,000-fix gateway batch costs about as long as the slower of the two sides. What is left
        goes out when the batch ends, one call per slot: a province's batch spreads over hundreds
        of regions, and cut into calls chunk by chunk it made calls of a few fixes each. Two
        fixes of one responder in different calls may land in either order: the newer timestamp
        wins either way. Fixes not held in their region then move in (`_move_in`).
        """
        out: list[str] = []
        batches: list[np.ndarray] = []
        queues = _SlotQueues(self.layout.slot_of)

        async def call(rows: np.ndarray, fixes: np.ndarray) -> None:
            for r, code in zip(rows.tolist(), await self._ingest_call(fixes, []), strict=True):
                out[r] = code

        await self.ready()
        full: list[asyncio.Task[None]] = []
        for chunk in chunks:
            if len(chunk) > INGEST_CHUNK:
                raise ValueError(f"a chunk of {len(chunk)} fixes: at most {INGEST_CHUNK} per script call")
            if len(chunk):
                batches.append(chunk.packed(self.resolution, self.layout))
                first = len(out)
                out.extend([""] * len(chunk))
                full += [asyncio.create_task(call(*c)) for c in queues.add(batches[-1], first)]
                await asyncio.sleep(0)  # let the calls go out before the next chunk is prepared
        await gather_limited(call(*c) for c in queues.rest())
        await asyncio.gather(*full)
        away = [i for i, code in enumerate(out) if code == _NOT_HERE]
        if away:  # one move for the whole batch: its round trips are paid once, not per chunk
            for i, code in zip(away, await self._move_in(np.concatenate(batches)[away]), strict=True):
                out[i] = code
        return [_OUTCOME_CODES[c] for c in out]

    async def ingest_one(self, fix: PositionFix) -> Outcome:
        """One phone's fix; fixes arriving together from many phones share one script call."""
        return await self._single_fixes.submit(fix)

    async def _store_fixes(self, batch: np.ndarray, profiles: Sequence[str]) -> list[str]:
        """The ingest script over fixes (packed), one call per slot of their regions; outcome codes
        in order. `profiles`: the directory's, for fixes moving in (else [])."""
        if not self.cluster:  # one slot: the whole chunk in one call
            return await self._ingest_call(batch, profiles)
        regions = [r.decode() for r in batch["region"].tolist()]
        out = [""] * len(batch)

        async def call(rows: list[int]) -> None:
            given = [profiles[r] for r in rows] if profiles else []
            for r, code in zip(rows, await self._ingest_call(batch[rows], given), strict=True):
                out[r] = code

        await self.ready()
        await gather_limited(map(call, self.layout.by_slot(regions).values()))
        return out

    async def _ingest_call(self, batch: np.ndarray, profiles: Sequence[str]) -> list[str]:
        declared = [self.layout.who_key(r.decode()) for r in unique(batch["region"].tolist())]
        args = [self.layout.base, batch.tobytes(), "\n".join(profiles)]
        reply = await self._ingest(keys=declared, args=args)
        if len(reply) != len(batch):  # the script could not read a fix: never silently lost
            raise RuntimeError(f"live store answered {len(reply)} outcomes for {len(batch)} fixes")
        return list(reply)

    async def _move_in(self, batch: np.ndarray) -> list[str]:
        """Outcome codes of fixes their region does not hold (or holds unconfirmed): moves between
        regions, first fixes after going on duty or a sweep, fixes of people off duty, and the
        fix after a move whose worker died. The module docstring gives the protocol and what it
        guarantees."""
        out = [_OUTCOMES[Outcome.stale]] * len(batch)  # for a fix that lost every race: the next fix tries
        pending = list(range(len(batch)))
        # the sweeper learns of the new regions before they hold anything (an off-duty phone's
        # region too: sweeping an empty region costs one call), while the directory is read
        regions = unique(r.decode() for r in batch["region"].tolist())
        registered = asyncio.create_task(self.redis.sadd(self.layout.regions_key, *regions))
        for _ in range(MOVE_ATTEMPTS):
            pending = await self._move_attempt(batch, pending, out, registered)
            if not pending:
                break
        await registered
        return out

    async def _move_attempt(
        self, batch: np.ndarray, pending: list[int], out: list[str], registered: asyncio.Task[int]
    ) -> list[int]:
        """One try of the move protocol for the `pending` rows of `batch`; writes their outcome
        codes into `out` and returns the rows whose commit lost a race (to try again)."""
        ids = decode_ids(batch["id"][pending])
        new = [r.decode() for r in batch["region"][pending].tolist()]
        ts = [f"{t:.0f}" for t in batch["ts_ms"][pending].tolist()]
        stamp = f"{time.time() * 1000:.0f}"
        # 1. the directory: profile and old region; a move marks its target before writing there
        profiles = await self._directory(self._directory_begin_move, ids, new, head=[stamp])
        old = [p.split("|", 1)[0] for p in profiles]
        marked = [j for j, p in enumerate(profiles) if p and old[j] != new[j]]
        leaving = [j for j in marked if old[j]]
        times = await self._in_regions(self._times, [old[j] for j in leaving], [ids[j] for j in leaving])
        newer_there = {j for j, t in zip(leaving, times, strict=True) if t and float(t) >= float(ts[j])}
        moving = [j for j, p in enumerate(profiles) if p and j not in newer_there]
        for j, p in enumerate(profiles):
            out[pending[j]] = _OUTCOMES[Outcome.not_on_duty] if not p else _OUTCOMES[Outcome.stale]
        won: list[int] = []
        lost: list[int] = []
        if moving:
            # 2. the copy in the new region, unconfirmed
            await registered
            rows = [pending[j] for j in moving]
            codes = await self._store_fixes(batch[rows], [profiles[j] for j in moving])
            for j, code in zip(moving, codes, strict=True):
                out[pending[j]] = code
            stored = [j for j, c in zip(moving, codes, strict=True) if c == _OUTCOMES[Outcome.stored]]
            refused = [j for j, c in zip(moving, codes, strict=True) if c == _OUTCOMES[Outcome.not_qualified]]
            # 3. compare-and-set the directory
            moved, expected, targets = ([xs[j] for j in stored] for xs in (ids, profiles, new))
            committed = await self._directory(self._directory_commit, moved, expected, targets, head=[stamp])
            won = [j for j, ok in zip(stored, committed, strict=True) if ok == "1"]
            lost = [j for j, ok in zip(stored, committed, strict=True) if ok == "0"]
            gone = [j for j, ok in zip(stored, committed, strict=True) if ok == "-"]
            for j in gone:
                out[pending[j]] = _OUTCOMES[Outcome.not_on_duty]
            # 4. the old region lets go (as it does for a fix that finds the responder unqualified)
            # and the new copy is confirmed; a move that lost its race takes back its own copy, if
            # still the one it wrote (another move may have refreshed it), or whatever is there
            # once off duty
            drops = [(old[j], ids[j], "") for j in won + refused if old[j] and old[j] != new[j]]
            drops += [(new[j], ids[j], ts[j]) for j in lost] + [(new[j], ids[j], "") for j in gone]
            let_go = [self._in_regions(self._drop, *map(list, zip(*drops, strict=True)))] if drops else []
            confirmed = self._in_regions(self._confirm, [new[j] for j in won], [ids[j] for j in won])
            await asyncio.gather(confirmed, *let_go)
        # 5. the finished moves' marks go: a won move's names the region it left (none if it left
        # none: the commit took it), the others' their target
        left = {j: old[j] for j in won}
        unmarks = [(ids[j], f"{left.get(j, new[j])}:{stamp}") for j in marked if left.get(j) != ""]
        if unmarks:
            await self._directory(self._directory_unmark, *map(list, zip(*unmarks, strict=True)))
        return [pending[j] for j in lost]

    def page_of(self, lat: float, lng: float) -> str:
        """The page (an H3 cell at `page_resolution`) where a position is kept."""
        lats, lngs = np.round([lat], 6), np.round([lng], 6)
        return f"{int(_page_ids(lats, lngs, self.resolution, self.page_resolution)[0]):x}"

    def page_key_of(self, lat: float, lng: float) -> str:
        """The Redis key of the page where a position is kept."""
        page = self.page_of(lat, lng)
        return self.layout.page_keys(cell_ids([page]))[0].decode()

    async def _read(self, pages: np.ndarray) -> np.ndarray:
        """The records of the given pages (integer H3 ids), one structured array: one native MGET
        per slot on the store's own connections (`core.cluster_reads`), nodes in parallel, never
        decoded."""
        if not len(pages):
            return np.frombuffer(b"", dtype=RECORD_DTYPE)
        if isinstance(self._pages, ReadConnection):
            blobs = await self._pages.execute("MGET", *self.layout.page_keys(pages))
        else:
            replies = await self._pages.mget(self.layout.page_keys_by_slot(pages))
            blobs = [b for reply in replies for b in reply]
        return np.frombuffer(b"".join(b for b in blobs if b), dtype=RECORD_DTYPE)

    async def get(self, responder_id: str) -> LivePosition | None:
        """The last position kept for a responder (possibly stale: callers judge freshness)."""
        profile = await self.profile(responder_id)
        region = profile.split("|", 1)[0] if profile else ""
        where = await self.redis.hget(self.layout.who_key(region), responder_id) if region else None
        page = _page(where) if where else ""
        if not page:
            return None
        records = await self._read(cell_ids([page]))
        mine = records[records["id"] == padded_id(responder_id)]
        return self._positions(mine)[0] if len(mine) else None

    def _positions(self, records: np.ndarray) -> list[LivePosition]:
        """Records as positions."""
        c = _Columns.of(records)
        return list(
            map(LivePosition, c.ids, c.lat, c.lng, c.ts, c.accuracy_m, c.mode, repeat(self.resolution))
        )

    async def nearby(
        self,
        lat: float,
        lng: float,
        radius_m: float,
        *,
        at: float | None = None,
        cert_kinds: Collection[str] | None = None,
        mode_radii: Mapping[str, float] | None = None,
        in_homes: bool = False,
    ) -> Nearby:
        """Dispatchable responders within `radius_m` of the point at time `at`, nearest first.

        The pages read are guaranteed to hold every cell of the disk (`geo.cells.page_cover_ids`);
        the exact great-circle distance then decides, so nobody is missed at a cell edge.
        `mode_radii` narrows the radius per travel mode (a walker's reach is a fraction of a
        car's): the dispatcher passes its reach model's radii. Unlisted modes use `radius_m`.
        `in_homes`: the patient is in a home, so only responders whose tier allows homes count.
        """
        at = time.time() if at is None else at
        kinds = None if cert_kinds is None else set(cert_kinds)
        pages = page_cover_ids(lat, lng, radius_m, self.resolution, self.page_resolution)
        records = await self._read(pages)
        if not len(records):
            return Nearby.empty()
        limit = np.array([min(radius_m, (mode_radii or {}).get(m, radius_m)) for m in MODES])
        distance = haversine_m_np(lat, lng, records["lat"], records["lng"])
        near = (distance <= limit[records["mode"]]) & (records["ts_ms"] >= (at - self.staleness_s) * 1000)
        if in_homes:
            near &= records["homes"] == 1
        qualified = qualified_mask(records, at, kinds)
        unsure = np.flatnonzero(near & (records["check_profile"] == 1))
        if len(unsure):  # certificates the summary cannot describe: the profile decides
            ids = decode_ids(records["id"][unsure])
            profiles = await self._directory(self._directory_get, ids)
            certificates = [decode_certificates(p.rsplit("|", 1)[1]) if p else None for p in profiles]
            qualified[unsure] = [c is not None and qualified_at(c, at, kinds) for c in certificates]
        keep = np.flatnonzero(near & qualified)
        keep = keep[np.argsort(distance[keep], kind="stable")]
        c = _Columns.of(records[keep])
        if len(set(c.ids)) < len(c.ids):  # two regions' copies: a move between them in flight
            keep = _newest_per_responder(records, keep)
            c = _Columns.of(records[keep])
        return Nearby(c.ids, c.lat, c.lng, c.ts, c.mode, c.accuracy_m, distance[keep].tolist())

    async def positions(self, box: Box | None = None) -> list[LivePosition]:
        """Every kept position, fresh or not yet swept (the dispatcher's map); within `box` only the
        pages in view are read (`geo.cells.box_cells`; `ValueError` past `pages_max`)."""
        if box is not None:
            records = await self._read(box_cells(*box, self.page_resolution))
            records = records[box.holds(records)]
        else:
            parts = await gather_limited(map(self._region_records, sorted(await self.regions())))
            records = np.concatenate([np.frombuffer(b"", dtype=RECORD_DTYPE), *parts])
        return self._positions(records[_newest_per_responder(records, np.arange(len(records)))])

    async def _region_records(self, region: str) -> np.ndarray:
        """Every record a region holds, read by the pages its profiles name."""
        who = self.layout.who_key(region)
        pages = sorted({_page(where) async for _, where in self.redis.hscan_iter(who, count=1000)})
        parts = [await self._read(cell_ids(pages[i : i + 1000])) for i in range(0, len(pages), 1000)]
        return np.concatenate([np.frombuffer(b"", dtype=RECORD_DTYPE), *parts])

    async def regions(self) -> set[str]:
        """The regions that ever held a position (what the sweeper walks)."""
        return set(await self.redis.smembers(self.layout.regions_key))

    async def drop_legacy_cells(self) -> int:
        """Delete the keys of earlier layouts (left by an upgrade with Redis kept): the cell hashes
        before records, the pages of records before tiers, the pages and profile hash before
        regions. Nothing reads them any more, the profiles are rebuilt from Postgres (the new
        markers are missing), and positions come back with the phones' next fixes."""
        dropped = 0
        for prefix in self.legacy_prefixes:
            async for key in self.redis.scan_iter(match=prefix + "*", count=1000):
                dropped += int(await self.redis.unlink(key))
        for key in self.legacy_keys:
            dropped += int(await self.redis.unlink(key))
        return dropped

    async def sweep(self, now_s: float | None = None, page: int = 1000) -> int:
        """Drop positions past the staleness limit or whose certificates lapsed, in every region;
        returns how many. (Workers sweep region by region under leases: `sweep_region`.)"""
        swept = await gather_limited(self.sweep_region(r, now_s, page) for r in await self.regions())
        return sum(swept)

    async def sweep_moves(self, tag: str, now_s: float | None = None, page: int = 1000) -> int:
        """Clear the move marks of one directory part left by workers that died mid-move (older than
        `MOVE_MARK_S`); returns how many orphan copies went. Each step is ordered so that a move
        running meanwhile is never undone: the copy's time is read first, then the directory is
        asked (a fresh move to that region marked it before writing there), and the copy is
        dropped only if its time is still the one read."""
        now_s = time.time() if now_s is None else now_s
        since = f"{(now_s - MOVE_MARK_S) * 1000:.0f}"
        cursor, dropped = "0", 0
        while True:
            key = self.layout.directory_key(tag)
            cursor, *stale = await self._directory_stale_marks(
                keys=[key], args=[self.layout.base, tag, cursor, page, since]
            )
            if stale:
                dropped += await self._clear_stale_marks(stale[0::2], stale[1::2], since)
            if str(cursor) == "0":
                return dropped

    async def _clear_stale_marks(self, ids: Sequence[str], tokens: Sequence[str], since: str) -> int:
        regions = _marked_regions(" ".join(tokens))
        times = await self._in_regions(self._times, regions, ids)
        held = ["1" if t else "0" for t in times]
        settled = await self._directory(self._directory_stale_check, ids, tokens, held, head=[since])
        orphans = [j for j, done in enumerate(settled) if done == "0"]
        if not orphans:
            return 0
        dropped = await self._in_regions(
            self._drop, [regions[j] for j in orphans], [ids[j] for j in orphans], [times[j] for j in orphans]
        )
        gone = [j for j, d in zip(orphans, dropped, strict=True) if d == "1"]  # else: changed, next sweep
        if gone:
            await self._directory(self._directory_unmark, [ids[j] for j in gone], [tokens[j] for j in gone])
        return len(gone)

    async def sweep_region(self, region: str, now_s: float | None = None, page: int = 1000) -> int:
        """`sweep` for one region: one script call per `page` profiles, atomic in the region's slot."""
        now_s = time.time() if now_s is None else now_s
        oldest_ms = math.floor((now_s - self.staleness_s) * 1000)
        cursor, removed = "0", 0
        while True:
            cursor, n = await self._sweep(
                keys=[self.layout.who_key(region)],
                args=[self.layout.base, region, cursor, page, oldest_ms, int(now_s)],
            )
            removed += int(n)
            if str(cursor) == "0":
                return removed


def _marked_regions(marks: str) -> list[str]:
    """The regions named by a responder's move marks (`"<region>:<ms> ..."`)."""
    return [token.split(":", 1)[0] for token in marks.split()]


def _newest_per_responder(records: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """`rows` (indices into `records`, in their order) keeping one per responder: the newest fix.
    Two rows of one responder are two regions' copies during a move between them."""
    ids = records["id"][rows]
    if len(set(ids.tolist())) == len(ids):
        return rows
    newest: dict[bytes, int] = {}
    for row, rid, ts in zip(rows.tolist(), ids.tolist(), records["ts_ms"][rows].tolist(), strict=True):
        if rid not in newest or ts > records["ts_ms"][newest[rid]]:
            newest[rid] = row
    kept = set(newest.values())
    return np.array([r for r in rows.tolist() if r in kept], dtype=rows.dtype)
