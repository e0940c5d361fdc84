"""The Lua scripts behind every change to the live store: each change is one atomic script.

A move between pages is one script, so nobody is ever in two pages or none; an out-of-order fix
never overwrites a newer one; going off duty removes the profile and the position in one step.
Reads (`nearby`, `positions`) need no script: one native `MGET` of whole pages, nothing per person.

Keys (see `responders.store`): KEYS[1] is the profile hash `who`; ARGV[1] is the prefix of the
page keys (`<prefix><h3 page>` → the records of that page's cells, `responders.records`). The
scripts touch page keys they compute themselves, which is fine on a single Redis (not Cluster).
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
local function where_at(page, at)
  return page .. '@' .. ((at - 1) / REC)
end
"""
)

# ARGV[2]: the fixes, `responders.records.FIX_DTYPE` back to back: the script slices them at fixed
# offsets (no text to parse, nothing to pack but the certificate summary). The reply is one string
# with an outcome digit per fix: 1 stored, 2 stale (not newer than the kept one), 3 not on duty,
# 4 not qualified at its time.
INGEST = (
    _COMMON
    + """
local who, prefix, batch = KEYS[1], ARGV[1], ARGV[2]
local out = {}
local BODY = FIX - ID_BYTES - PAGE_CHARS
for o = 1, #batch, FIX do
  local key = string.sub(batch, o, o + ID_BYTES - 1)
  local rid = string.match(key, '^[^%z]*')
  local p = redis.call('HGET', who, rid)
  if not p then
    out[#out + 1] = '3'
  else
    local b = o + ID_BYTES + PAGE_CHARS  -- where the fix's record body starts in the batch
    local ts = struct.unpack('<d', batch, b + TS_AT - ID_BYTES - 1)
    local oldwhere, pmode, homes, certs = profile(p)
    local oldkey, blob, at, rec, hinted = locate(prefix, key, oldwhere)
    if not valid_at(certs, ts / 1000) then
      if at then drop(oldkey, blob, at) end
      if oldwhere ~= '' then redis.call('HSET', who, rid, tail(pmode, homes, certs)) end
      out[#out + 1] = '4'
    elseif at and struct.unpack('<d', rec, TS_AT) >= ts then
      out[#out + 1] = '2'
    else
      local body = string.sub(batch, b, b + BODY - 1)
      if string.byte(body, BODY) == PROFILE_MODE then
        body = string.sub(body, 1, BODY - 1) .. string.char(MODES[pmode] or 0)
      end
      local page = string.sub(batch, o + ID_BYTES, b - 1)
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

# ARGV: prefix, id, mode, certificates, now (s), homes ("0"/"1"). On duty, or new mode, certificates
# or tier: the position is kept (with the new summary) only while a certificate is valid now.
SET_PROFILE = (
    _COMMON
    + """
local who, prefix, rid, mode, certs, homes = KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[6]
local where = ''
local p = redis.call('HGET', who, rid)
if p then
  local oldwhere = profile(p)
  local pagekey, blob, at = locate(prefix, pad(rid), oldwhere)
  if at and valid_at(certs, tonumber(ARGV[5])) then
    redis.call('SETRANGE', pagekey, at - 1 + CERTS_AT, summary(certs, homes))
    where = where_at(page_of(oldwhere), at)
  elseif at then
    drop(pagekey, blob, at)
  end
end
redis.call('HSET', who, rid, where .. tail(mode, homes, certs))
return 1
"""
)

# ARGV: prefix, id. Off duty or deactivated: forget the profile and the position.
REMOVE = (
    _COMMON
    + """
local p = redis.call('HGET', KEYS[1], ARGV[2])
if not p then return 0 end
local pagekey, blob, at = locate(ARGV[1], pad(ARGV[2]), (profile(p)))
if at then drop(pagekey, blob, at) end
redis.call('HDEL', KEYS[1], ARGV[2])
return 1
"""
)

# ARGV: prefix, cursor, count, oldest ts ms, now s. One HSCAN step of the sweeper: positions past
# the staleness limit, or whose certificates lapsed, are dropped (the profile stays: still on duty).
SWEEP = (
    _COMMON
    + """
local who, prefix = KEYS[1], ARGV[1]
local scan = redis.call('HSCAN', who, ARGV[2], 'COUNT', ARGV[3])
local removed = 0
local entries = scan[2]
for j = 1, #entries, 2 do
  local rid = entries[j]
  local where, pmode, homes, certs = profile(entries[j + 1])
  if where ~= '' then
    local pagekey, blob, at, rec = locate(prefix, pad(rid), where)
    local ts = at and struct.unpack('<d', rec, TS_AT)
    if not ts or ts < tonumber(ARGV[4]) or not valid_at(certs, tonumber(ARGV[5])) then
      if at then drop(pagekey, blob, at) end
      redis.call('HSET', who, rid, tail(pmode, homes, certs))
      removed = removed + 1
    end
  end
end
return {scan[1], removed}
"""
)
