"""The Lua scripts behind every change to the live store: each change is one atomic script.

A move between pages of one region is one script, so nobody is ever in two pages or none there; an
out-of-order fix never overwrites a newer one; going off duty removes the position in one step.
A move between regions is five steps across slots (`responders.store` explains the protocol).
Reads (`nearby`, `positions`) need no script: one native `MGET` of whole pages per slot.

Keys (`responders.live_layout`): ARGV[1] is the live index's base name; every other key a script
touches is built from it and a hash tag the arguments name (a region's H3 index, a directory part's
tag). Each script declares in KEYS the hashes it touches (a region's profile hash, a directory
part), one per tag; the keys it derives (a fix's page, a record's old page named by the profile's
`<page>@<slot>` hint, a directory part's move marks) carry the same tag, so on a cluster every
key of a call sits in the declared keys' slot: the server checks each key a script touches and
refuses one of another slot (tested), and the caller groups its items by slot so that holds. On
a single server one call may span regions.
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
-- A region's profile: `<where>` ends with UNCONFIRMED while a move into the region has not
-- committed (its copy is there, the directory may still name another region); the fifth value
-- is that flag ('' or UNCONFIRMED), stripped from `where`.
local UNCONFIRMED = '!'
local function profile(p)
  local where, mode, rest = string.match(p, '^([^|]*)|([^|]*)|(.*)$')
  local flag = ''
  if string.byte(where, -1) == 33 then where, flag = string.sub(where, 1, -2), UNCONFIRMED end
  local homes, certs = string.match(rest, '^([01])|(.*)$')
  if not homes then return where, mode, '0', rest, flag end
  return where, mode, homes, certs, flag
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
  local oldwhere, pmode, homes, certs, flag
  if p then oldwhere, pmode, homes, certs, flag = profile(p) end
  if not held then oldwhere, flag = '', UNCONFIRMED end  -- a copy moving in: unconfirmed till the commit
  if not p or (flag ~= '' and not given) then
    -- nobody here, or a copy whose move never committed (its worker died): the directory decides
    out[#out + 1] = given and '3' or '5'
  else
    local b = o + ID_BYTES + 2 * PAGE_CHARS  -- where the fix's record body starts in the batch
    local ts = struct.unpack('<d', batch, b + TS_AT - ID_BYTES - 1)
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
          redis.call('HSET', who, rid, where_at(page, at) .. flag .. tail(pmode, homes, certs))
        end
      else
        if at then drop(oldkey, blob, at) end
        -- SET of the whole string, not APPEND: APPEND's room to grow doubled the memory per record
        local pagekey = prefix .. page
        local current = redis.call('GET', pagekey) or ''
        redis.call('SET', pagekey, current .. key .. body .. summary(certs, homes))
        redis.call('HSET', who, rid, where_at(page, #current + 1) .. flag .. tail(pmode, homes, certs))
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

# KEYS: the regions' profile hashes. ARGV[2..]: (region, id) pairs. A move into these regions
# committed: its copy is confirmed, and the phone's next fixes there are stored in place again.
CONFIRM = (
    _COMMON
    + """
local base, out = ARGV[1], {}
for i = 2, #ARGV, 2 do
  local who, rid = who_key(base, ARGV[i]), ARGV[i + 1]
  local p = redis.call('HGET', who, rid)
  if p then
    local where, mode, homes, certs, flag = profile(p)
    if flag ~= '' then redis.call('HSET', who, rid, where .. tail(mode, homes, certs)) end
  end
  out[#out + 1] = '1'
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
    local oldwhere, _, _, _, flag = profile(p)
    local pagekey, blob, at = locate(pages_of(base, region), pad(rid), oldwhere)
    if at and valid_at(certs, now) then
      redis.call('SETRANGE', pagekey, at - 1 + CERTS_AT, summary(certs, homes))
      redis.call('HSET', who, rid, where_at(page_of(oldwhere), at) .. flag .. tail(mode, homes, certs))
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
# profile and the region holding the position ("" while none). Beside it, in the same slot, the
# moves' marks: id -> "<region>:<ms>" tokens, space-separated, one per move between regions in
# flight (its target region) or just committed (the region it left, until that region let go),
# so that going off duty can clean every region that may hold a copy. KEYS: the directory parts
# named (a part's marks share its tag, so its slot).
_DIRECTORY_COMMON = """
local function directory_key(base, tag)
  return base .. '{' .. tag .. '}:dir'
end
local function moves_key(base, tag)
  return base .. '{' .. tag .. '}:moves'
end
local function region_of(p)
  return (string.match(p, '^[^|]*'))
end
local function mark(key, rid, token)
  local m = redis.call('HGET', key, rid)
  redis.call('HSET', key, rid, m and (m .. ' ' .. token) or token)
end
-- One occurrence of `token` goes (two moves of one phone may have written the same one).
local function unmark(key, rid, token)
  local m = redis.call('HGET', key, rid)
  if not m then return end
  local kept, found = {}, false
  for t in string.gmatch(m, '%S+') do
    if t == token and not found then found = true else kept[#kept + 1] = t end
  end
  if #kept == 0 then
    redis.call('HDEL', key, rid)
  else
    redis.call('HSET', key, rid, table.concat(kept, ' '))
  end
end
-- A mark to `region` made at or after `since` (ms): a move that may still be running.
local function fresh_mark(key, rid, region, since)
  for t in string.gmatch(redis.call('HGET', key, rid) or '', '%S+') do
    local r, ms = string.match(t, '^([^:]*):(%d+)$')
    if r == region and tonumber(ms) >= since then return true end
  end
  return false
end
"""

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
  local new = (old and region_of(old) or '') .. ARGV[i + 2]
  redis.call('HSET', key, rid, new)
  out[#out + 1] = new
end
return out
"""

# ARGV[2..]: (tag, id) pairs. Off duty: the profile and the marks go; the reply is each old profile
# and the marks, "<profile>\n<marks>" ("\n" if none): every region that may hold a copy.
DIRECTORY_DELETE = """
local base, out = ARGV[1], {}
for i = 2, #ARGV, 2 do
  local key, moves, rid = directory_key(base, ARGV[i]), moves_key(base, ARGV[i]), ARGV[i + 1]
  out[#out + 1] = (redis.call('HGET', key, rid) or '') .. '\\n' .. (redis.call('HGET', moves, rid) or '')
  redis.call('HDEL', key, rid)
  redis.call('HDEL', moves, rid)
end
return out
"""

# ARGV[2]: the move's stamp (ms); ARGV[3..]: (tag, id, target region) triples. A move between
# regions begins: each profile ("" when off duty), and, for a responder on duty whose profile
# names another region, the mark "<target>:<stamp>", before anything is written in the target.
DIRECTORY_BEGIN_MOVE = """
local base, stamp, out = ARGV[1], ARGV[2], {}
for i = 3, #ARGV, 3 do
  local tag, rid, target = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local p = redis.call('HGET', directory_key(base, tag), rid)
  if p and region_of(p) ~= target then mark(moves_key(base, tag), rid, target .. ':' .. stamp) end
  out[#out + 1] = p or ''
end
return out
"""

# ARGV[2]: the move's stamp; ARGV[3..]: (tag, id, expected profile, new region) quadruples. A move
# commits: the profile names the new region only if it is still exactly the one the move read
# ("1"); its mark then names the region left (the caller unmarks it once that region let go), or
# goes when none was left. Else "0" (a new profile or another move came first) or "-" (off duty).
DIRECTORY_COMMIT = """
local base, stamp, out = ARGV[1], ARGV[2], {}
for i = 3, #ARGV, 4 do
  local tag, rid, expected, target = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local key = directory_key(base, tag)
  local p = redis.call('HGET', key, rid)
  if p == expected then
    local old = region_of(expected)
    redis.call('HSET', key, rid, target .. string.sub(expected, #old + 1))
    if old ~= target then
      local moves = moves_key(base, tag)
      unmark(moves, rid, target .. ':' .. stamp)
      if old ~= '' then mark(moves, rid, old .. ':' .. stamp) end
    end
    out[#out + 1] = '1'
  else
    out[#out + 1] = p and '0' or '-'
  end
end
return out
"""

# ARGV[2..]: (tag, id, token) triples: a finished move's mark goes.
DIRECTORY_UNMARK = """
local base, out = ARGV[1], {}
for i = 2, #ARGV, 3 do
  unmark(moves_key(base, ARGV[i]), ARGV[i + 1], ARGV[i + 2])
  out[#out + 1] = '1'
end
return out
"""

# KEYS: one directory part. ARGV: base, tag, cursor, count, since (ms). One HSCAN step over the
# part's marks: {next cursor, id, token, id, token, ...} for each mark older than `since`, left by
# a worker that died mid-move (a move takes milliseconds).
DIRECTORY_STALE_MARKS = """
local base, tag, since = ARGV[1], ARGV[2], tonumber(ARGV[5])
local scan = redis.call('HSCAN', moves_key(base, tag), ARGV[3], 'COUNT', ARGV[4])
local out, entries = {scan[1]}, scan[2]
for j = 1, #entries, 2 do
  for t in string.gmatch(entries[j + 1], '%S+') do
    if tonumber(string.match(t, ':(%d+)$')) < since then
      out[#out + 1] = entries[j]
      out[#out + 1] = t
    end
  end
end
return out
"""

# ARGV[2]: since (ms); ARGV[3..]: (tag, id, stale token, "1" if its region holds a copy) quadruples,
# asked after reading the copies. A stale mark whose region holds nothing, or whose copy the
# directory accounts for (it names that region, or a fresh move goes there), just goes ("1"); else
# the copy is an orphan ("0"): the caller drops it (if unchanged since read), then unmarks.
DIRECTORY_STALE_CHECK = """
local base, since, out = ARGV[1], tonumber(ARGV[2]), {}
for i = 3, #ARGV, 4 do
  local tag, rid, token, held = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local region, moves = string.match(token, '^([^:]*)'), moves_key(base, tag)
  local p = redis.call('HGET', directory_key(base, tag), rid)
  if held == '0' or (p and region_of(p) == region) or fresh_mark(moves, rid, region, since) then
    unmark(moves, rid, token)
    out[#out + 1] = '1'
  else
    out[#out + 1] = '0'
  end
end
return out
"""
(
    DIRECTORY_GET,
    DIRECTORY_SET,
    DIRECTORY_DELETE,
    DIRECTORY_BEGIN_MOVE,
    DIRECTORY_COMMIT,
    DIRECTORY_UNMARK,
    DIRECTORY_STALE_MARKS,
    DIRECTORY_STALE_CHECK,
) = (
    _DIRECTORY_COMMON + script
    for script in (
        DIRECTORY_GET,
        DIRECTORY_SET,
        DIRECTORY_DELETE,
        DIRECTORY_BEGIN_MOVE,
        DIRECTORY_COMMIT,
        DIRECTORY_UNMARK,
        DIRECTORY_STALE_MARKS,
        DIRECTORY_STALE_CHECK,
    )
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
