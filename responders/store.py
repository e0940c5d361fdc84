"""The live location store: each on-duty responder's last position, H3-indexed in Redis.

Layout (every key under the deployment's prefix, see `core.redis.Keys`):

* `live:who` — HASH responder id → `"<page>@<slot>|<profile mode>|<homes>|<certificates>"`. A field
  exists exactly while the responder is active and on duty; `<page>@<slot>` (the page holding the
  position and a hint of the record's place in it) is empty until the first position arrives or
  after the position was swept; `<homes>` is 1 when their tier allows alerts in homes. The
  certificates use the compact form of `responders.availability.encode_certificates`.
* `live:page:<h3 page>` — STRING: the records of the dispatchable responders in the cells of one
  page, back to back (`responders.records`: position, time, accuracy, mode, certificate summary,
  tier). Before tiers the records were a byte shorter, under `live:rec:`: those keys are dropped at
  start-up (`drop_legacy_cells`) and each position comes back with the phone's next fix.
* `live:generation` — STRING: the `run_id` of the Redis server the profiles were last rebuilt on.
  Missing (flushed, restarted) or naming another run (restarted during the rebuild): the profiles
  are lost and are rebuilt, whatever wrote to `live:who` since (a duty change recreates the hash).
* `live:warming` — STRING, expiring a while (`live_warmup_s`) after a rebuild that found the data lost:
  positions are still streaming back, so the dispatcher re-plans promptly.

The cell index is at `h3_resolution` (9 by default): a responder's cell is the H3 cell of its stored
position. A page is that cell's ancestor `live_page_levels` resolutions up by the H3 hierarchy (the
7 res-9 children of a res-8 cell by default). A query reads the pages of every cell that can hold a
point of its disk (`geo.cells.page_cover_ids`) with one `MGET` on the store's own connection
(`core.redis.ReadConnection`) and filters them with numpy. Pages, because Redis pays about a
microsecond for every key it looks up (measured: an `MGET` of the ~150 res-9 cells of a 2 km disk
took ~110 µs of Redis time, of their ~30 parents ~40 µs), and that was half of a query's time.

Every change runs as one Lua script (`responders.live_scripts`), so a move between pages is atomic
(nobody is ever in two pages or none), an out-of-order update never overwrites a newer one, and
going off duty removes both the profile and the position in one step. Staleness is enforced on read
(a query never returns a position older than the limit, whatever the sweeper's lag); the sweeper
only bounds memory.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from itertools import repeat
from typing import NamedTuple, Protocol

import numpy as np
from redis.asyncio import Redis

from core.coalesce import Coalescer
from core.redis import Keys, ReadConnection
from geo.cells import cell_ids, cell_keys, cell_of, cell_texts, cells_of, page_cover_ids, parents_of
from geo.distance import haversine_m_np
from responders import live_scripts
from responders.availability import CertificatePeriod, decode_certificates, encode_certificates, qualified_at
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
INGEST_CHUNK = 1000  # fixes per script call: ~10 ms of Redis time, so queries interleave


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

    def packed(self, resolution: int, page_resolution: int) -> bytes:
        """The fixes as the ingest script reads them (`records.FIX_DTYPE`), each with the page of
        its H3 cell. The cell is that of the position as stored, so a record's cell is a function
        of the record alone."""
        lat, lng = np.round(self.lat, 6), np.round(self.lng, 6)  # ~0.1 m: what a phone's fix can claim
        batch = np.empty(len(self), dtype=FIX_DTYPE)
        batch["id"] = self.ids
        batch["page"] = cell_texts(_page_ids(lat, lng, resolution, page_resolution))
        batch["lat"] = lat
        batch["lng"] = lng
        batch["ts_ms"] = np.floor(self.ts * 1000)
        batch["accuracy_m"] = np.where(np.isnan(self.accuracy_m), NO_ACCURACY, np.round(self.accuracy_m))
        batch["mode"] = self.mode
        return batch.tobytes()


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

    def __init__(self, redis: Redis, keys: Keys, settings: StoreSettings) -> None:
        self.redis = redis
        self.resolution = settings.h3_resolution
        self.page_resolution = max(0, settings.h3_resolution - settings.live_page_levels)
        self.staleness_s = settings.staleness_s
        self.who_key = keys("live", "who")
        self.page_prefix = keys("live", "page", "")
        self.legacy_cell_prefix = keys("live", "cell", "")  # the text-per-person hashes before records
        self.legacy_record_prefix = keys("live", "rec", "")  # the records before tiers, a byte shorter
        self.generation_key = keys("live", "generation")
        self.warming_key = keys("live", "warming")
        self._ingest = redis.register_script(live_scripts.INGEST)
        self._set_profile = redis.register_script(live_scripts.SET_PROFILE)
        self._remove = redis.register_script(live_scripts.REMOVE)
        self._sweep = redis.register_script(live_scripts.SWEEP)
        self._single_fixes: Coalescer[PositionFix, Outcome] = Coalescer(self.ingest, INGEST_CHUNK)
        self._pages = ReadConnection(redis)

    async def aclose(self) -> None:
        """Close the store's own read connection (the shared client is its owner's to close)."""
        await self._pages.aclose()

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
        """`set_profile` for many (start-up resync, bulk duty changes), pipelined in pages. A
        profile given as (id, mode, certificates) is for public places only."""
        now = int(time.time() if now_s is None else now_s)
        for start in range(0, len(profiles), 1000):
            async with self.redis.pipeline(transaction=False) as pipe:
                for profile in profiles[start : start + 1000]:
                    responder_id, mode, certificates, homes = LiveProfile(*profile)
                    padded_id(responder_id)  # refuse an id a record cannot carry, before storing
                    certs = encode_certificates(certificates)
                    args = [self.page_prefix, responder_id, mode, certs, now, "1" if homes else "0"]
                    await self._set_profile(keys=[self.who_key], args=args, client=pipe)
                await pipe.execute()

    async def remove(self, responder_id: str) -> bool:
        """Off duty, deactivated: the profile and the position go at once (positions are private)."""
        return bool(await self._remove(keys=[self.who_key], args=[self.page_prefix, responder_id]))

    async def is_on_duty(self, responder_id: str) -> bool:
        return bool(await self.redis.hexists(self.who_key, responder_id))

    async def on_duty_count(self) -> int:
        return int(await self.redis.hlen(self.who_key))

    async def server_run(self) -> str:
        """The Redis server's run id: a new one after every restart."""
        return str((await self.redis.info("server"))["run_id"])

    async def profiles_lost(self) -> bool:
        """True when Redis lost the profiles since the last rebuild (restart, flush): resync.

        Judged by the generation marker, not by the profile hash: a duty change after a restart
        recreates the hash with one profile, and every other responder's fix was then refused.
        """
        marker = await self.redis.get(self.generation_key)
        return marker is None or marker != await self.server_run()

    async def mark_rebuilt(self, run: str, *, warmup_s: float = 0.0) -> None:
        """Record a finished rebuild done on server run `run` (read before it began, so a restart
        during the rebuild still reads as lost); for `warmup_s` positions count as streaming back."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self.generation_key, run)
            if warmup_s > 0:
                pipe.set(self.warming_key, "1", px=math.ceil(warmup_s * 1000))
            await pipe.execute()

    async def warming(self) -> bool:
        """True while positions are not all here after Redis lost them: the loss is not repaired
        yet (no generation marker), or it was repaired less than `live_warmup_s` ago and phones
        are still sending them again. An empty answer then does not mean nobody is there."""
        generation, warming = await self.redis.mget(self.generation_key, self.warming_key)
        return generation is None or warming is not None

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

        Each chunk is one script call, atomic on the server, sent as soon as the chunk is packed:
        Redis stores one chunk while this process prepares the next (`chunks` may be a generator
        that validates or converts as it goes), so a 5,000-fix gateway batch costs about as long
        as the slower of the two sides. Two fixes of one responder in different chunks may land in
        either order: the newer timestamp wins either way.
        """
        calls: list[asyncio.Task[str]] = []
        for chunk in chunks:
            if len(chunk) > INGEST_CHUNK:
                raise ValueError(f"a chunk of {len(chunk)} fixes: at most {INGEST_CHUNK} per script call")
            if len(chunk):
                packed = chunk.packed(self.resolution, self.page_resolution)
                calls.append(asyncio.create_task(self._ingest_chunk(len(chunk), packed)))
                await asyncio.sleep(0)  # let the call go out before the next chunk is prepared
        return [_OUTCOME_CODES[c] for reply in await asyncio.gather(*calls) for c in reply]

    async def ingest_one(self, fix: PositionFix) -> Outcome:
        """One phone's fix; fixes arriving together from many phones share one script call."""
        return await self._single_fixes.submit(fix)

    async def _ingest_chunk(self, count: int, packed: bytes) -> str:
        reply = await self._ingest(keys=[self.who_key], args=[self.page_prefix, packed])
        if len(reply) != count:  # the script could not read a fix: never silently lost
            raise RuntimeError(f"live store answered {len(reply)} outcomes for {count} fixes")
        return str(reply)

    def page_of(self, lat: float, lng: float) -> str:
        """The page (an H3 cell at `page_resolution`) where a position is kept."""
        lats, lngs = np.round([lat], 6), np.round([lng], 6)
        return f"{int(_page_ids(lats, lngs, self.resolution, self.page_resolution)[0]):x}"

    async def _read(self, pages: np.ndarray) -> np.ndarray:
        """The records of the given pages (integer H3 ids), one structured array: one native MGET,
        never decoded."""
        if not len(pages):
            return np.frombuffer(b"", dtype=RECORD_DTYPE)
        blobs = await self._pages.execute("MGET", *cell_keys(self.page_prefix, pages))
        return np.frombuffer(b"".join(b for b in blobs if b), dtype=RECORD_DTYPE)

    async def get(self, responder_id: str) -> LivePosition | None:
        """The last position kept for a responder (possibly stale: callers judge freshness)."""
        profile = await self.redis.hget(self.who_key, responder_id)
        page = _page(profile) if profile else ""
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
            profiles = await self.redis.hmget(self.who_key, ids)
            qualified[unsure] = [
                p is not None and qualified_at(decode_certificates(p.rsplit("|", 1)[1]), at, kinds)
                for p in profiles
            ]
        keep = np.flatnonzero(near & qualified)
        keep = keep[np.argsort(distance[keep], kind="stable")]
        c = _Columns.of(records[keep])
        return Nearby(c.ids, c.lat, c.lng, c.ts, c.mode, c.accuracy_m, distance[keep].tolist())

    async def positions(self) -> list[LivePosition]:
        """Every kept position, fresh or not yet swept (the dispatcher's map)."""
        page_by_id = {
            rid: _page(profile)
            async for rid, profile in self.redis.hscan_iter(self.who_key, count=1000)
            if not profile.startswith("|")
        }
        pages = sorted(set(page_by_id.values()))
        out: list[LivePosition] = []
        for start in range(0, len(pages), 1000):
            records = await self._read(cell_ids(pages[start : start + 1000]))
            # a record written after the profile scan has no page here yet: the next map refresh shows it
            known = np.array([i in page_by_id for i in decode_ids(records["id"])], dtype=bool)
            out += self._positions(records[known])
        return out

    async def drop_legacy_cells(self) -> int:
        """Delete the keys of earlier layouts (left by an upgrade with Redis kept): the cell hashes
        before records, and the pages of records before tiers. Nothing reads them any more, and
        their positions come back with the phones' next fixes."""
        dropped = 0
        for prefix in (self.legacy_cell_prefix, self.legacy_record_prefix):
            async for key in self.redis.scan_iter(match=prefix + "*", count=1000):
                dropped += int(await self.redis.unlink(key))
        return dropped

    async def sweep(self, now_s: float | None = None, page: int = 1000) -> int:
        """Drop positions past the staleness limit or whose certificates lapsed; returns how many."""
        now_s = time.time() if now_s is None else now_s
        oldest_ms = math.floor((now_s - self.staleness_s) * 1000)
        cursor, removed = "0", 0
        while True:
            cursor, n = await self._sweep(
                keys=[self.who_key], args=[self.page_prefix, cursor, page, oldest_ms, int(now_s)]
            )
            removed += int(n)
            if str(cursor) == "0":
                return removed
