"""The live location store: each on-duty responder's last position, H3-indexed in Redis.

Layout (every key under the deployment's prefix, see `core.redis.Keys`):

* `live:who` — HASH responder id → `"<cell>|<profile mode>|<certificates>"`. A field exists exactly
  while the responder is active and on duty; `<cell>` is empty until the first position arrives or
  after the position was swept. The certificates use the compact form of
  `responders.availability.encode_certificates`.
* `live:cell:<h3>` — HASH responder id → `"<lat>,<lng>,<ts ms>,<accuracy m>,<mode>"`: the cell index
  of dispatchable responders; a query reads the cells covering its disk in one script.

Every change runs as one Lua script, so a move between cells is atomic (nobody is ever in two cells
or none), an out-of-order update never overwrites a newer one, and going off duty removes both the
profile and the position in one step. Staleness is enforced on read (a query never returns a
position older than the limit, whatever the sweeper's lag); the sweeper only bounds memory.
The scripts touch cell keys they compute themselves, which is fine on a single Redis (not Cluster).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

import numpy as np
from redis.asyncio import Redis

from core.coalesce import Coalescer
from core.redis import Keys
from geo.cells import cell_of, cover_cells
from geo.distance import EARTH_RADIUS_M, haversine_m_np
from responders.availability import CertificatePeriod, encode_certificates


class StoreSettings(Protocol):
    h3_resolution: int
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


@dataclass(frozen=True, slots=True)
class PositionFix:
    """One validated position report in WGS-84; `ts` in epoch seconds; `mode` None = profile's."""

    responder_id: str
    lat: float
    lng: float
    ts: float
    accuracy_m: float | None = None
    mode: str | None = None


@dataclass(frozen=True, slots=True)
class LivePosition:
    responder_id: str
    lat: float
    lng: float
    ts: float
    accuracy_m: float | None
    mode: str
    cell: str


@dataclass(frozen=True, slots=True)
class NearbyResponder:
    """A dispatchable responder near a point, with the exact great-circle distance."""

    responder_id: str
    lat: float
    lng: float
    ts: float
    mode: str
    accuracy_m: float | None
    distance_m: float


# Parses a profile into cell, mode and certificates; a certificate check against time `t` (seconds).
_LUA_COMMON = """
local function profile(p)
  return string.match(p, '^([^|]*)|([^|]*)|(.*)$')
end
local function qualified(certs, t)
  for s, e in string.gmatch(certs, '[%a_]+:(%d+):(%d+)') do
    if tonumber(s) <= t and t < tonumber(e) then return true end
  end
  return false
end
"""

# KEYS[1] who; ARGV[1] cell-key prefix; ARGV[2] the updates, one line each, every line ending in
# '\n': `id,cell,lat,lng,ts_ms,accuracy,mode`. One packed argument instead of seven per update:
# the client packs a 5,000-update batch in about a millisecond instead of ~80 ms, and the reply is
# one string with an outcome digit per update instead of 5,000 integers to parse.
_INGEST = (
    _LUA_COMMON
    + """
local who, prefix = KEYS[1], ARGV[1]
local out = {}
for rid, cell, lat, lng, ts, acc, mode in string.gmatch(ARGV[2],
    '([^,\\n]*),([^,\\n]*),([^,\\n]*),([^,\\n]*),([^,\\n]*),([^,\\n]*),([^,\\n]*)\\n') do
  local p = redis.call('HGET', who, rid)
  if not p then
    out[#out + 1] = '3'
  else
    local oldcell, pmode, certs = profile(p)
    if not qualified(certs, tonumber(ts) / 1000) then
      if oldcell ~= '' then
        redis.call('HDEL', prefix .. oldcell, rid)
        redis.call('HSET', who, rid, '|' .. pmode .. '|' .. certs)
      end
      out[#out + 1] = '4'
    else
      local newer = true
      if oldcell ~= '' then
        local old = redis.call('HGET', prefix .. oldcell, rid)
        if old and tonumber(string.match(old, '^[^,]*,[^,]*,([^,]*),')) >= tonumber(ts) then newer = false end
      end
      if not newer then
        out[#out + 1] = '2'
      else
        if mode == '' then mode = pmode end
        if oldcell ~= cell then
          if oldcell ~= '' then redis.call('HDEL', prefix .. oldcell, rid) end
          redis.call('HSET', who, rid, cell .. '|' .. pmode .. '|' .. certs)
        end
        redis.call('HSET', prefix .. cell, rid, lat .. ',' .. lng .. ',' .. ts .. ',' .. acc .. ',' .. mode)
        out[#out + 1] = '1'
      end
    end
  end
end
return table.concat(out)
"""
)

# KEYS[1] who; ARGV: prefix, id, mode, certificates, now (s). Keeps the position only if still qualified.
_SET_PROFILE = (
    _LUA_COMMON
    + """
local who, prefix, rid = KEYS[1], ARGV[1], ARGV[2]
local cell = ''
local p = redis.call('HGET', who, rid)
if p then
  cell = profile(p)
  if cell ~= '' and not qualified(ARGV[4], tonumber(ARGV[5])) then
    redis.call('HDEL', prefix .. cell, rid)
    cell = ''
  end
end
redis.call('HSET', who, rid, cell .. '|' .. ARGV[3] .. '|' .. ARGV[4])
return 1
"""
)

# KEYS[1] who; ARGV: prefix, id. Off duty or deactivated: forget the profile and the position.
_REMOVE = (
    _LUA_COMMON
    + """
local p = redis.call('HGET', KEYS[1], ARGV[2])
if not p then return 0 end
local cell = profile(p)
if cell ~= '' then redis.call('HDEL', ARGV[1] .. cell, ARGV[2]) end
redis.call('HDEL', KEYS[1], ARGV[2])
return 1
"""
)

# KEYS[1] who; ARGV: cell-key prefix, the cells joined by ',' (one argument: packing a hundred keys
# cost the client more than the whole read), lat, lng, radius m (with slack), oldest ts ms, at s,
# Earth radius m, n, then n pairs (mode, smaller radius m for that mode), then 'any' or 'only'
# followed by the certificate kinds that qualify. Filters on the server (fresh,
# within the radius, qualified: a lat/lng box first, then haversine, then the profiles in one HMGET
# per thousand) so only candidates cross the wire, as ONE string of '<id>,<position>' lines: one
# bulk reply parses in microseconds where hundreds of array elements took milliseconds in the
# client. The client re-checks distance and freshness exactly.
_NEARBY = (
    _LUA_COMMON
    + """
local rad = math.pi / 180
local prefix, cells = ARGV[1], ARGV[2]
local lat0, lng0 = tonumber(ARGV[3]), tonumber(ARGV[4])
local radius, oldest, at, earth = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local cos0 = math.cos(lat0 * rad)
local dlat_max = radius / (earth * rad)
local dlng_max = dlat_max / math.max(0.01, math.cos(math.min(89, math.abs(lat0) + dlat_max) * rad))
local mode_radius = {}
local n_modes = tonumber(ARGV[9])
for i = 10, 9 + 2 * n_modes, 2 do mode_radius[ARGV[i]] = tonumber(ARGV[i + 1]) end
local kinds = nil
if ARGV[10 + 2 * n_modes] == 'only' then
  kinds = {}
  for i = 11 + 2 * n_modes, #ARGV do kinds[ARGV[i]] = true end
end
local function qualified_as(certs)
  for k, s, e in string.gmatch(certs, '([%a_]+):(%d+):(%d+)') do
    if (kinds == nil or kinds[k]) and tonumber(s) <= at and at < tonumber(e) then return true end
  end
  return false
end
local ids, values = {}, {}
for cell in string.gmatch(cells, '[^,]+') do
  local entries = redis.call('HGETALL', prefix .. cell)
  for j = 1, #entries, 2 do
    local value = entries[j + 1]
    local p_lat, p_lng, ts, mode = string.match(value, '^([^,]*),([^,]*),([^,]*),[^,]*,(.*)$')
    local y, x = tonumber(p_lat), tonumber(p_lng)
    local dx = math.abs(x - lng0)
    if dx > 180 then dx = 360 - dx end  -- across the antimeridian
    if math.abs(y - lat0) <= dlat_max and dx <= dlng_max and tonumber(ts) >= oldest then
      local a = math.sin((y - lat0) * rad / 2) ^ 2
        + cos0 * math.cos(y * rad) * math.sin((x - lng0) * rad / 2) ^ 2
      if 2 * earth * math.asin(math.min(1, math.sqrt(a))) <= (mode_radius[mode] or radius) then
        ids[#ids + 1] = entries[j]
        values[#values + 1] = value
      end
    end
  end
end
local out = {}
for first = 1, #ids, 1000 do
  local last = math.min(#ids, first + 999)
  local profiles = redis.call('HMGET', KEYS[1], unpack(ids, first, last))
  for k = first, last do
    local p = profiles[k - first + 1]
    if p then
      local _, _, certs = profile(p)
      if qualified_as(certs) then out[#out + 1] = ids[k] .. ',' .. values[k] end
    end
  end
end
return table.concat(out, '\\n')
"""
)

# KEYS[1] who; ARGV: prefix, cursor, count, oldest ts ms, now s. One HSCAN step of the sweeper.
_SWEEP = (
    _LUA_COMMON
    + """
local who, prefix = KEYS[1], ARGV[1]
local page = redis.call('HSCAN', who, ARGV[2], 'COUNT', ARGV[3])
local removed = 0
local entries = page[2]
for j = 1, #entries, 2 do
  local rid = entries[j]
  local cell, pmode, certs = profile(entries[j + 1])
  if cell ~= '' then
    local pos = redis.call('HGET', prefix .. cell, rid)
    local ts = pos and tonumber(string.match(pos, '^[^,]*,[^,]*,([^,]*),'))
    if not ts or ts < tonumber(ARGV[4]) or not qualified(certs, tonumber(ARGV[5])) then
      redis.call('HDEL', prefix .. cell, rid)
      redis.call('HSET', who, rid, '|' .. pmode .. '|' .. certs)
      removed = removed + 1
    end
  end
end
return {page[1], removed}
"""
)


def _parse_position(responder_id: str, value: str, cell: str) -> LivePosition:
    lat, lng, ts_ms, acc, mode = value.split(",")
    return LivePosition(
        responder_id, float(lat), float(lng), int(ts_ms) / 1000, float(acc) if acc else None, mode, cell
    )


def _exact_nearby(
    raw: str, lat: float, lng: float, radius_m: float, radii: Mapping[str, float], oldest_ms: float
) -> list[NearbyResponder]:
    """The script's candidates re-checked exactly (fresh, within their mode's radius), nearest first.

    Vectorised: at a 2 km radius a query brings back hundreds of people, and parsing and measuring
    them one by one in Python cost more than the whole Redis read.
    """
    if not raw:
        return []
    rows = [line.rsplit(",", 5) for line in raw.split("\n")]  # id, lat, lng, ts, acc, mode
    ts_ms = np.array([r[3] for r in rows], dtype=np.int64)
    y = np.array([r[1] for r in rows], dtype=np.float64)
    x = np.array([r[2] for r in rows], dtype=np.float64)
    limit = np.array([radii.get(r[5], radius_m) for r in rows], dtype=np.float64)
    distance = haversine_m_np(lat, lng, y, x)
    keep = np.flatnonzero((distance <= limit) & (ts_ms >= oldest_ms))
    keep = keep[np.argsort(distance[keep], kind="stable")].tolist()
    ys, xs, ts_s, ds = y.tolist(), x.tolist(), (ts_ms / 1000).tolist(), distance.tolist()
    return [
        NearbyResponder(
            rows[i][0], ys[i], xs[i], ts_s[i], rows[i][5], float(rows[i][4]) if rows[i][4] else None, ds[i]
        )
        for i in keep
    ]


class LiveLocationStore:
    """Last positions of on-duty responders and the H3 index the dispatcher's matching walks."""

    def __init__(self, redis: Redis, keys: Keys, settings: StoreSettings) -> None:
        self.redis = redis
        self.resolution = settings.h3_resolution
        self.staleness_s = settings.staleness_s
        self.who_key = keys("live", "who")
        self.cell_prefix = keys("live", "cell", "")
        self._ingest = redis.register_script(_INGEST)
        self._set_profile = redis.register_script(_SET_PROFILE)
        self._remove = redis.register_script(_REMOVE)
        self._nearby = redis.register_script(_NEARBY)
        self._sweep = redis.register_script(_SWEEP)
        self._single_fixes: Coalescer[PositionFix, Outcome] = Coalescer(self.ingest, INGEST_CHUNK)

    # --- duty and profile ------------------------------------------------------------------
    async def set_profile(
        self,
        responder_id: str,
        mode: str,
        certificates: Sequence[CertificatePeriod],
        now_s: float | None = None,
    ) -> None:
        """Mark on duty (or refresh mode and certificates); drops the position if no longer qualified."""
        await self.set_profiles([(responder_id, mode, certificates)], now_s)

    async def set_profiles(
        self, profiles: Sequence[tuple[str, str, Sequence[CertificatePeriod]]], now_s: float | None = None
    ) -> None:
        """`set_profile` for many (start-up resync, bulk duty changes), pipelined in pages."""
        now = int(time.time() if now_s is None else now_s)
        for start in range(0, len(profiles), 1000):
            async with self.redis.pipeline(transaction=False) as pipe:
                for responder_id, mode, certificates in profiles[start : start + 1000]:
                    args = [self.cell_prefix, responder_id, mode, encode_certificates(certificates), now]
                    await self._set_profile(keys=[self.who_key], args=args, client=pipe)
                await pipe.execute()

    async def remove(self, responder_id: str) -> bool:
        """Off duty, deactivated: the profile and the position go at once (positions are private)."""
        return bool(await self._remove(keys=[self.who_key], args=[self.cell_prefix, responder_id]))

    async def is_on_duty(self, responder_id: str) -> bool:
        return bool(await self.redis.hexists(self.who_key, responder_id))

    async def on_duty_count(self) -> int:
        return int(await self.redis.hlen(self.who_key))

    async def profiles_lost(self) -> bool:
        """True when the profile hash is gone (Redis restarted or was flushed): resync from Postgres."""
        return not await self.redis.exists(self.who_key)

    # --- positions ---------------------------------------------------------------------------
    async def ingest(self, fixes: Sequence[PositionFix]) -> list[Outcome]:
        """Store a batch of validated fixes; one outcome per fix, in order.

        Each chunk of `INGEST_CHUNK` fixes is one script call, atomic on the server; the chunks go
        out concurrently on separate connections, so Redis runs one chunk while this process packs
        the next (a 5,000-fix gateway batch costs about as long as the slower of the two sides).
        Two fixes of one responder in different chunks may land in either order: the newer
        timestamp wins either way.
        """
        if not fixes:
            return []
        chunks = [fixes[i : i + INGEST_CHUNK] for i in range(0, len(fixes), INGEST_CHUNK)]
        replies = await asyncio.gather(*(self._ingest_chunk(chunk) for chunk in chunks))
        return [_OUTCOME_CODES[c] for reply in replies for c in reply]

    async def ingest_one(self, fix: PositionFix) -> Outcome:
        """One phone's fix; fixes arriving together from many phones share one script call."""
        return await self._single_fixes.submit(fix)

    async def _ingest_chunk(self, fixes: Sequence[PositionFix]) -> str:
        resolution = self.resolution
        lines = []
        for f in fixes:
            if "," in f.responder_id or "\n" in f.responder_id:
                raise ValueError(f"responder_id: must not contain ',' or a line break ({f.responder_id!r})")
            acc = "" if f.accuracy_m is None else f"{f.accuracy_m:.0f}"
            cell = cell_of(f.lat, f.lng, resolution)
            lines.append(
                f"{f.responder_id},{cell},{f.lat:.6f},{f.lng:.6f},{int(f.ts * 1000)},{acc},{f.mode or ''}\n"
            )
        reply = await self._ingest(keys=[self.who_key], args=[self.cell_prefix, "".join(lines)])
        if len(reply) != len(fixes):  # a line the script could not read: never silently lost
            raise RuntimeError(f"live store answered {len(reply)} outcomes for {len(fixes)} fixes")
        return str(reply)

    async def get(self, responder_id: str) -> LivePosition | None:
        """The last position kept for a responder (possibly stale: callers judge freshness)."""
        profile = await self.redis.hget(self.who_key, responder_id)
        cell = profile.split("|", 1)[0] if profile else ""
        if not cell:
            return None
        value = await self.redis.hget(self.cell_prefix + cell, responder_id)
        return _parse_position(responder_id, value, cell) if value else None

    async def nearby(
        self,
        lat: float,
        lng: float,
        radius_m: float,
        *,
        at: float | None = None,
        cert_kinds: Collection[str] | None = None,
        mode_radii: Mapping[str, float] | None = None,
    ) -> list[NearbyResponder]:
        """Dispatchable responders within `radius_m` of the point at time `at`, nearest first.

        The cells read are a cover guaranteed to contain the whole disk (`geo.cells.cover_cells`);
        the exact great-circle distance then decides, so nobody is missed at a cell edge.
        `mode_radii` narrows the radius per travel mode (a walker's reach is a fraction of a
        car's): the dispatcher passes its reach model's radii so the ~3/4 of a crowd who cannot
        arrive in time are never shipped, parsed and discarded. Unlisted modes use `radius_m`.
        """
        at = time.time() if at is None else at
        cells = cover_cells(lat, lng, radius_m, self.resolution)
        oldest_ms = (at - self.staleness_s) * 1000
        kinds = ["any"] if cert_kinds is None else ["only", *cert_kinds]
        radii = {m: min(r, radius_m) for m, r in (mode_radii or {}).items()}
        # 1 m of slack: the server's prefilter may keep a few extra, never drop one we keep below
        per_mode = [v for m, r in radii.items() for v in (m, r + 1.0)]
        args = [self.cell_prefix, ",".join(cells), lat, lng, radius_m + 1.0, oldest_ms - 1, at]
        args += [EARTH_RADIUS_M, len(radii), *per_mode, *kinds]
        raw = await self._nearby(keys=[self.who_key], args=args)
        return _exact_nearby(raw, lat, lng, radius_m, radii, oldest_ms)

    async def positions(self) -> list[LivePosition]:
        """Every kept position, fresh or not yet swept (the dispatcher's map): pages over the profiles."""
        located = [
            (rid, profile.split("|", 1)[0])
            async for rid, profile in self.redis.hscan_iter(self.who_key, count=1000)
            if not profile.startswith("|")
        ]
        out: list[LivePosition] = []
        for start in range(0, len(located), 1000):
            chunk = located[start : start + 1000]
            async with self.redis.pipeline(transaction=False) as pipe:
                for rid, cell in chunk:
                    pipe.hget(self.cell_prefix + cell, rid)
                values = await pipe.execute()
            out += [_parse_position(rid, v, cell) for (rid, cell), v in zip(chunk, values, strict=True) if v]
        return out

    async def sweep(self, now_s: float | None = None, page: int = 1000) -> int:
        """Drop positions past the staleness limit or whose certificates lapsed; returns how many."""
        now_s = time.time() if now_s is None else now_s
        oldest_ms = math.floor((now_s - self.staleness_s) * 1000)
        cursor, removed = "0", 0
        while True:
            cursor, n = await self._sweep(
                keys=[self.who_key], args=[self.cell_prefix, cursor, page, oldest_ms, int(now_s)]
            )
            removed += int(n)
            if str(cursor) == "0":
                return removed
