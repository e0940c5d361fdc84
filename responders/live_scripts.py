"""The Lua scripts behind every change to the live store: each change is one atomic script.

A move between pages of one region is one script, so nobody is ever in two pages or none there; an
out-of-order fix never overwrites a newer one; going off duty removes the position in one step.
A move between regions is three steps across slots (`responders.store` explains the protocol).
Reads (`nearby`, `positions`) need no script: one native `MGET` of whole pages per slot.

Keys (`responders.live_layout`): ARGV[1] is the live index's base name; every other key a script
touches is built from it and a hash tag the arguments name (a region's H3 index, a directory part's
tag). Each script declares in KEYS the hashes it touches (a region's profile hash, a directory
part), one per tag; the pages it derives (a fix's page, a record's old page named by the profile's
`<page>@<slot>` hint) carry the same region's tag, so on a cluster every key of a call sits in the
declared keys' slot: the server checks each key a script touches and refuses one of another slot
(tested), and the caller groups its items by slot so that holds. On a single server one call may
span regions.
"""

from __future__ import annotations

from responders.records import lua_tables

# Profiles are "<where>|<profile mode>|<homes>|<certificates>" (compact form of
# `responders.availability.encode_certificates`); `<homes>` is "1" when the responder's tier allows
# alerts in homes, else "0" (a profile written before tiers has no such field: "0"). A record ends
# with the profile's summary: certificates, then the homes byte. `<where>` is "<page>@<slot>", the
# page holding the position and a hint of the record's place in it (0-based), or empty while there
# is no position.
# The hint spares reading a whole page (pages hold dozens of records; copying a string into Lua
# costs ~2 ns a byte) for the common update, a phone in the same page again: the record at the
# slot is checked by its id, and a stale hint (its page changed around it) falls back to a search.
_COMMON = (
    lua_tables()
    + """
local function profile(p)
  local where, mode, rest = string.match(p, '^([^|]*)|([^|]*)|(.*)$')
  local homes, certs = string.match(rest, '^([01])|(.*)$')
  if not homes then return where, mode, '0', rest end
  return where, mode, homes, certs
end
-- A profile's fields after `<where>`, as the hash keeps them.
local function tail(mode, homes, certs)
  return '|' .. mode .. '|' .. homes .. '|' .. certs
end
local function page_of(where)
  return (string.match(where, '^[^@]*'))
end
local function qualified(certs, t)
  for s, e in string.gmatch(certs, '[%a_]+:(%d+):(%d+)') do
    if tonumber(s) <= t and t < tonumber(e) then return true end
  end
  return false
end
local function pad(rid)
  return rid .. string.rep('\0', ID_BYTES - #rid)
end
-- Where a responder's record starts in a page's string (1-based), or nil. The id is matched only
-- at a record boundary, so bytes of a number can never be taken for an id.
local function find(blob, key)
  local init = 1
  while true do
    local s = string.find(blob, key, init, true)
    if not s or (s - 1) % REC == 0 then return s end
    init = s + 1
  end
end
-- Cut the record at `at` out of its page; the page's last record takes its place, so the slot hints
-- of all others stay right (`blob`: the page's string, read here when the caller has not).
local function drop(pagekey, blob, at)
  blob = blob or redis.call('GET', pagekey)
  if #blob == REC then
    redis.call('DEL', pagekey)
  elseif at == #blob - REC + 1 then
    redis.call('SET', pagekey, string.sub(blob, 1, at - 1))
  else
    local last = string.sub(blob, -REC)
    redis.call('SET', pagekey, string.sub(blob, 1, at - 1) .. last .. string.sub(blob, at + REC, -REC - 1))
  end
end
-- A certificate string's summary for records: one [from, until) per kind, plus the flag that sends
-- the query to the profile (two certificates of one kind, or a kind the summary has no column
-- for). Memoised per script call: a training cohort shares the same certificate dates.
local MEMO = {}
local function certificates(certs)
  local m = MEMO[certs]
  if m then return m end
  local from, till, check = {}, {}, 0
  for i = 1, N_KINDS do from[i], till[i] = 0, 0 end
  for k, s, e in string.gmatch(certs, '([%a_]+):(%d+):(%d+)') do
    local i = KINDS[k]
    if not i or till[i] ~= 0 then
      check = 1
    else
      from[i], till[i] = math.min(tonumber(s), 4294967295), math.min(tonumber(e), 4294967295)
    end
  end
  local parts = {}
  for i = 1, N_KINDS do parts[2 * i - 1], parts[2 * i] = from[i], till[i] end
  parts[2 * N_KINDS + 1] = check
  m = {packed = struct.pack(CERTS_FORMAT, unpack(parts)), from = from, till = till, check = check}
  MEMO[certs] = m
  return m
end
-- The end of a record: the certificate summary, then the homes byte.
local function summary(certs, homes)
  return certificates(certs).packed .. string.char(tonumber(homes))
end
-- A certificate valid at `t` (seconds): the summary answers, the full list only when flagged.
local function valid_at(certs, t)
  local m = certificates(certs)
  for i = 1, N_KINDS do
    if m.from[i] <= t and t < m.till[i] then return true end
  end
  return m.check == 1 and qualified(certs, t)
end
-- The record of the responder whose padded id is `key`, from the profile's `<where>`: its page
-- key, the page's string (nil when the hint sufficed), where the record starts (1-based), the
-- record itself, and whether the hint was right (or nils when there is no record).
local function locate(prefix, key, where)
  if where == '' then return nil end
  local page, slot = string.match(where, '^([^@]*)@?(%d*)$')
  local pagekey = prefix .. page
  if slot ~= '' then
    local at = tonumber(slot) * REC + 1
    local rec = redis.call('GETRANGE', pagekey, at - 1, at + REC - 2)
    if #rec == REC and string.sub(rec, 1, ID_BYTES) == key then return pagekey, nil, at, rec, true end
  end
  local blob = redis.call('GET', pagekey)
  local at = blob and find(blob, key)
  if not at then return pagekey end
  return pagekey, blob, at, string.sub(blob, at, at + REC - 1), false
end
-- Key names, as `responders.live_layout.LiveLayout` builds them: `base` is ARGV[1] (`<prefix>:live:`).
local function who_key(base, region)
  return base .. '{' .. region .. '}:who'
end
local function pages_of(base, region)
  return base .. '{' .. region .. '}:page:'
end
local function where_at(page, at)
  return page .. '@' .. ((at - 1) / REC)
end
"""
)


# KEYS: the profile hashes of the fixes' regions (one key per region: it routes the call and pins
# the slot; the pages are not listed: naming the ~1,000 pages of a chunk cost Redis ~2 µs per fix,
# measured, and a record's old page is only known once the profile is read). ARGV[2]: the fixes,
# `responders.records.FIX_DTYPE` back to back: the script slices them at fixed offsets (no text to
# parse, nothing to pack but the certificate summary). ARGV[3]: "" for fixes from phones; or, for
# fixes moving in from another region, the directory's profile of each (`<region>|<mode>|...`, ""
# when off duty), newline-separated. The reply is one string with an outcome digit per fix: 1
# stored, 2 stale (not newer than the kept one), 3 not on duty, 4 not qualified at its time, 5 not
# held in this region (ask the directory: moving in, first fix, or off duty).
INGEST = (
    _COMMON
    + """
local base, batch = ARGV[1], ARGV[2]
local given = nil
if ARGV[3] ~= '' then
  given = {}
  for p in string.gmatch(ARGV[3] .. '\\n', '([^\\n]*)\\n') do given[#given + 1] = p end
end
local out, names = {}, {}  -- names: each region's profile hash and page prefix, built once
local BODY = FIX - ID_BYTES - 2 * PAGE_CHARS
local n = 0
for o = 1, #batch, FIX do
  n = n + 1
  local key = string.sub(batch, o, o + ID_BYTES - 1)
  local rid = string.match(key, '^[^%z]*')
  local region = string.sub(batch, o + ID_BYTES, o + ID_BYTES + PAGE_CHARS - 1)
  local named = names[region]
  if not named then
    named = {who_key(base, region), pages_of(base, region)}
    names[region] = named
  end
  local who, prefix = named[1], named[2]
  local p = redis.call('HGET', who, rid)
  local held = p ~= false
  if not held and given and given[n] ~= '' then p = given[n] end  -- moving in: the directory's
  if not p then
    out[#out + 1] = given and '3' or '5'
  else
    local b = o + ID_BYTES + 2 * PAGE_CHARS  -- where the fix's record body starts in the batch
    local ts = struct.unpack('<d', batch, b + TS_AT - ID_BYTES - 1)
    local oldwhere, pmode, homes, certs = profile(p)
    if not held then oldwhere = '' end
    local oldkey, blob, at, rec, hinted = locate(prefix, key, oldwhere)
    if not valid_at(certs, ts / 1000) then
      if at then drop(oldkey, blob, at) end
      redis.call('HDEL', who, rid)
      out[#out + 1] = '4'
    elseif at and struct.unpack('<d', rec, TS_AT) >= ts then
      out[#out + 1] = '2'
    else
      local body = string.sub(batch, b, b + BODY - 1)
      if string.byte(body, BODY) == PROFILE_MODE then
        body = string.sub(body, 1, BODY - 1) .. string.char(MODES[pmode] or 0)
      end
      local page = string.sub(batch, o + ID_BYTES + PAGE_CHARS, b - 1)
      if at and page_of(oldwhere) == page then
        -- same page: the record's summary (certificates, homes) is already the profile's
        -- (SET_PROFILE keeps it so), only the position, time, accuracy and mode change
        redis.call('SETRANGE', oldkey, at - 1 + ID_BYTES, body)
        if not hinted then
          redis.call('HSET', who, rid, where_at(page, at) .. tail(pmode, homes, certs))
        end
      else
        if at then drop(oldkey, blob, at) end
        -- SET of the whole string, not APPEND: APPEND's room to grow doubled the memory per record
        local pagekey = prefix .. page
        local current = redis.call('GET', pagekey) or ''
        redis.call('SET', pagekey, current .. key .. body .. summary(certs, homes))
        redis.call('HSET', who, rid, where_at(page, #current + 1) .. tail(pmode, homes, certs))
      end
      out[#out + 1] = '1'
    end
  end
end
return table.concat(out)
"""
)

# KEYS: the regions' profile hashes. ARGV[2..]: (region, id) pairs. The time (ms, as text) of each
# responder's record in that region, "" when it holds none: a fix moving out must be newer.
TIMES = (
    _COMMON
    + """
local base, out = ARGV[1], {}
for i = 2, #ARGV, 2 do
  local region, rid = ARGV[i], ARGV[i + 1]
  local p = redis.call('HGET', who_key(base, region), rid)
  local ts = ''
  if p then
    local _, _, at, rec = locate(pages_of(base, region), pad(rid), (profile(p)))
    if at then ts = string.format('%.0f', struct.unpack('<d', rec, TS_AT)) end
  end
  out[#out + 1] = ts
end
return out
"""
)

# KEYS: the regions' profile hashes. ARGV[2..]: (region, id, time) triples: the responder's record
# and profile in that region go, if the record's time (ms) is `time`, or whatever it is for "".
# The reply: "1" per triple dropped, "0" where nothing was held or the record had moved on.
DROP = (
    _COMMON
    + """
local base, out = ARGV[1], {}
for i = 2, #ARGV, 3 do
  local region, rid, when = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local who = who_key(base, region)
  local p = redis.call('HGET', who, rid)
  local done = '0'
  if p then
    local pagekey, blob, at, rec = locate(pages_of(base, region), pad(rid), (profile(p)))
    if when == '' or (at and struct.unpack('<d', rec, TS_AT) == tonumber(when)) then
      if at then drop(pagekey, blob, at) end
      redis.call('HDEL', who, rid)
      done = '1'
    end
  end
  out[#out + 1] = done
end
return out
"""
)

# KEYS: the regions' profile hashes. ARGV[2]: now (s); ARGV[3..]: (region, id, directory profile)
# triples. New mode, certificates or tier reach the region holding the position: the record is
# kept (with the new summary) only while a certificate is valid now. Nothing held: nothing to do.
SET_PROFILE = (
    _COMMON
    + """
local base, now, out = ARGV[1], tonumber(ARGV[2]), {}
for i = 3, #ARGV, 3 do
  local region, rid = ARGV[i], ARGV[i + 1]
  local _, mode, homes, certs = profile(ARGV[i + 2])
  local who = who_key(base, region)
  local p = redis.call('HGET', who, rid)
  if p then
    local oldwhere = profile(p)
    local pagekey, blob, at = locate(pages_of(base, region), pad(rid), oldwhere)
    if at and valid_at(certs, now) then
      redis.call('SETRANGE', pagekey, at - 1 + CERTS_AT, summary(certs, homes))
      redis.call('HSET', who, rid, where_at(page_of(oldwhere), at) .. tail(mode, homes, certs))
    else
      if at then drop(pagekey, blob, at) end
      redis.call('HDEL', who, rid)
    end
  end
  out[#out + 1] = '1'
end
return out
"""
)

# KEYS: one region's profile hash. ARGV: base, region, cursor, count, oldest ts ms, now s. One
# HSCAN step of the sweeper: positions past the staleness limit, or whose certificates lapsed, go
# (the directory keeps the duty profile: the next fix is welcome).
SWEEP = (
    _COMMON
    + """
local base, region = ARGV[1], ARGV[2]
local who, prefix = who_key(base, region), pages_of(base, region)
local scan = redis.call('HSCAN', who, ARGV[3], 'COUNT', ARGV[4])
local removed = 0
local entries = scan[2]
for j = 1, #entries, 2 do
  local rid = entries[j]
  local where, _, _, certs = profile(entries[j + 1])
  local pagekey, blob, at, rec = locate(prefix, pad(rid), where)
  local ts = at and struct.unpack('<d', rec, TS_AT)
  if not ts or ts < tonumber(ARGV[5]) or not valid_at(certs, tonumber(ARGV[6])) then
    if at then drop(pagekey, blob, at) end
    redis.call('HDEL', who, rid)
    removed = removed + 1
  end
end
return {scan[1], removed}
"""
)

# The directory of record: responder id -> "<region>|<mode>|<homes>|<certificates>", the duty
# profile and the region holding the position ("" while none). KEYS: the directory parts named.

# ARGV[2..]: (tag, id) pairs. Each profile, "" when off duty.
DIRECTORY_GET = """
local base, out = ARGV[1], {}
for i = 2, #ARGV, 2 do
  out[#out + 1] = redis.call('HGET', directory_key(base, ARGV[i]), ARGV[i + 1]) or ''
end
return out
"""

# ARGV[2..]: (tag, id, "|<mode>|<homes>|<certificates>") triples. On duty or a new profile: the
# region is kept. The reply: each new profile, as the regions are to apply it.
DIRECTORY_SET = """
local base, out = ARGV[1], {}
for i = 2, #ARGV, 3 do
  local key, rid = directory_key(base, ARGV[i]), ARGV[i + 1]
  local old = redis.call('HGET', key, rid)
  local new = (old and string.match(old, '^[^|]*') or '') .. ARGV[i + 2]
  redis.call('HSET', key, rid, new)
  out[#out + 1] = new
end
return out
"""

# ARGV[2..]: (tag, id) pairs. Off duty: the profile goes; the reply is each old one ("" if none).
DIRECTORY_DELETE = """
local base, out = ARGV[1], {}
for i = 2, #ARGV, 2 do
  local key, rid = directory_key(base, ARGV[i]), ARGV[i + 1]
  out[#out + 1] = redis.call('HGET', key, rid) or ''
  redis.call('HDEL', key, rid)
end
return out
"""

# ARGV[2..]: (tag, id, expected profile, new region) quadruples. A move between regions commits:
# the profile names the new region only if it is still exactly the one the move read ("1"), else
# "0" (off duty, a new profile, or another move came first).
DIRECTORY_MOVE = """
local base, out = ARGV[1], {}
for i = 2, #ARGV, 4 do
  local key, rid, expected = directory_key(base, ARGV[i]), ARGV[i + 1], ARGV[i + 2]
  if redis.call('HGET', key, rid) == expected then
    redis.call('HSET', key, rid, ARGV[i + 3] .. string.sub(expected, #string.match(expected, '^[^|]*') + 1))
    out[#out + 1] = '1'
  else
    out[#out + 1] = '0'
  end
end
return out
"""
_DIRECTORY_KEYS = """
local function directory_key(base, tag)
  return base .. '{' .. tag .. '}:dir'
end
"""
DIRECTORY_GET, DIRECTORY_SET, DIRECTORY_DELETE, DIRECTORY_MOVE = (
    _DIRECTORY_KEYS + script for script in (DIRECTORY_GET, DIRECTORY_SET, DIRECTORY_DELETE, DIRECTORY_MOVE)
)

# KEYS: one marker tag's generation, epoch and warming keys. ARGV: the rebuild's token, warm-up ms.
# A rebuild is recorded only where the epoch it began with is still there: a shard that lost its
# data during the rebuild lost the epoch too, and still reads as lost.
MARK_REBUILT = """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
if tonumber(ARGV[2]) > 0 then redis.call('SET', KEYS[3], '1', 'PX', ARGV[2]) end
return 1
"""
