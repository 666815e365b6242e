"""The Lua scripts of the Redis store.

Redis Cluster runs a script on one hash slot only, so there are two families (this module holds
the first, `tenant_scripts.py` the second):

- conversation scripts, on the keys of one conversation (`{tenant:conversation}`): the record hash
  `c`, the messages `m` (seq -> message) and the ids `i` (message id -> seq). They make a write and
  its checks (existence, scope, expiry, idempotency, limits) one atomic step.
- tenant scripts, on the tenant's indexes (`{tenant}`): the owner map, the ordered lists (all, per
  user, per user and workspace), the expiry index and the tombstones.

Scope arguments: a user ('' for anyone) and workspaces ('*' for all, else joined by \\x1f).
Timestamps arrive from the caller as epoch milliseconds (13 digits, exact in Lua's doubles).
"""

from __future__ import annotations

_HELPERS = r"""
local function admits(user, ws, scope_user, scope_ws)
  if scope_user ~= '' and user ~= scope_user then return false end
  if scope_ws == '*' then return true end
  for w in string.gmatch(scope_ws, '[^\31]+') do
    if w == ws then return true end
  end
  return false
end

-- The live record's user, workspace, expiry and mode, or nil and the reason it is not there.
local function check(c, now, scope_user, scope_ws)
  local f = redis.call('HMGET', c, 'user', 'ws', 'exp', 'mode')
  if not f[1] or not admits(f[1], f[2], scope_user, scope_ws) then return nil, 'missing' end
  if f[3] ~= '' and tonumber(f[3]) <= now then return nil, 'missing' end
  return f, nil
end

local function expire_all(keys, exp)
  for _, key in ipairs(keys) do
    if exp ~= '' then redis.call('PEXPIREAT', key, exp) else redis.call('PERSIST', key) end
  end
end

-- Slide the conversation's one expiry from `now` over all its keys (none when its ttl is '').
local function slide(keys, now)
  local ttl = redis.call('HGET', keys[1], 'ttl')
  local exp = ''
  if ttl ~= '' then exp = string.format('%d', now + tonumber(ttl)) end
  redis.call('HSET', keys[1], 'exp', exp)
  expire_all(keys, exp)
end

-- {'ok', record field, value, ...}
local function with_record(c)
  local out = {'ok'}
  for _, v in ipairs(redis.call('HGETALL', c)) do out[#out + 1] = v end
  return out
end
"""

# KEYS: c m i. ARGV: now, field/value pairs. Replaces an expired record; refuses a live one.
CREATE = (
    _HELPERS
    + r"""
local now = tonumber(ARGV[1])
local f = redis.call('HMGET', KEYS[1], 'user', 'exp')
if f[1] and (f[2] == '' or tonumber(f[2]) > now) then return 'exists' end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
expire_all({KEYS[1]}, redis.call('HGET', KEYS[1], 'exp'))
return 'ok'
"""
)

# KEYS: c m i. ARGV: now, max ('' none), policy, scope user, scope workspaces, n, then n times:
# id, body (JSON object), preview, input tokens, output tokens; last, how many of the ids the caller
# has seen stored and compared ('' none).
# Returns {'ok', kind_1, value_1, ..., kind_n, value_n, record pairs...} where kind is 'new' (value:
# seq), 'old' (value: the stored message, or 'trimmed:<seq>') or 'dup' (value: 0-based position of
# the first occurrence in this batch); or {'missing'}, {'local_only'}, {'limit', count}. When the
# batch has new messages and stored ids other than the caller compared, it writes nothing and
# returns {'seen', kinds and values...}: the caller compares the stored messages, then asks again.
APPEND = (
    _HELPERS
    + r"""
local now = tonumber(ARGV[1])
local f, err = check(KEYS[1], now, ARGV[4], ARGV[5])
if err then return {err} end
if f[4] == 'local' then return {'local_only'} end
local rec = redis.call('HMGET', KEYS[1], 'count', 'last')
local count, last = tonumber(rec[1]), tonumber(rec[2])
local n = tonumber(ARGV[6])
local out = {'ok'}
local seen = {}
local fresh = {}
local seq = last
local nold = 0
for k = 0, n - 1 do
  local base = 7 + k * 5
  local id = ARGV[base]
  if seen[id] then
    out[#out + 1] = 'dup'; out[#out + 1] = tostring(seen[id])
  else
    seen[id] = k
    local stored = redis.call('HGET', KEYS[3], id)
    if stored then
      nold = nold + 1
      out[#out + 1] = 'old'
      out[#out + 1] = redis.call('HGET', KEYS[2], stored) or ('trimmed:' .. stored)
    else
      seq = seq + 1
      fresh[#fresh + 1] = {seq, id, ARGV[base + 1], ARGV[base + 2],
                           tonumber(ARGV[base + 3]), tonumber(ARGV[base + 4])}
      out[#out + 1] = 'new'; out[#out + 1] = tostring(seq)
    end
  end
end
if #fresh > 0 and nold > 0 and ARGV[7 + n * 5] ~= tostring(nold) then
  out[1] = 'seen'
  return out
end
if #fresh > 0 then
  local total = count + #fresh
  if ARGV[2] ~= '' then
    local max = tonumber(ARGV[2])
    if total > max then
      if ARGV[3] == 'reject' or #fresh > max then return {'limit', tostring(count)} end
      local first = last - count + 1
      for s = first, first + (total - max) - 1 do redis.call('HDEL', KEYS[2], s) end
      total = max
    end
  end
  local tin, tout = 0, 0
  for _, x in ipairs(fresh) do
    redis.call('HSET', KEYS[2], x[1], '[' .. x[1] .. ',' .. ARGV[1] .. ',' .. x[3] .. ']')
    redis.call('HSET', KEYS[3], x[2], x[1])
    tin = tin + x[5]
    tout = tout + x[6]
  end
  redis.call('HSET', KEYS[1], 'count', total, 'last', seq, 'active', ARGV[1], 'preview', fresh[#fresh][4])
  redis.call('HINCRBY', KEYS[1], 'in', tin)
  redis.call('HINCRBY', KEYS[1], 'out', tout)
  slide(KEYS, now)
end
local record = redis.call('HGETALL', KEYS[1])
for _, v in ipairs(record) do out[#out + 1] = v end
return out
"""
)

# KEYS: c m i. ARGV: now, scope user, scope workspaces, expected version ('' any), ttl ('keep', ''
# for never, or ms), then field/value pairs. Returns {'ok', record pairs...}, {'missing'} or
# {'version', current}.
UPDATE = (
    _HELPERS
    + r"""
local now = tonumber(ARGV[1])
local f, err = check(KEYS[1], now, ARGV[2], ARGV[3])
if err then return {err} end
local version = redis.call('HGET', KEYS[1], 'version')
if ARGV[4] ~= '' and ARGV[4] ~= version then return {'version', version} end
if #ARGV > 5 then redis.call('HSET', KEYS[1], unpack(ARGV, 6)) end
redis.call('HINCRBY', KEYS[1], 'version', 1)
if ARGV[5] ~= 'keep' then redis.call('HSET', KEYS[1], 'ttl', ARGV[5]) end
slide(KEYS, now)
return with_record(KEYS[1])
"""
)

# KEYS: c m i. ARGV: now, scope user, scope workspaces. A heartbeat.
TOUCH = (
    _HELPERS
    + r"""
local now = tonumber(ARGV[1])
local f, err = check(KEYS[1], now, ARGV[2], ARGV[3])
if err then return {err} end
redis.call('HSET', KEYS[1], 'active', ARGV[1])
slide(KEYS, now)
return with_record(KEYS[1])
"""
)

# KEYS: c m i. ARGV: now, scope user, scope workspaces. Returns the record as it was.
DELETE = (
    _HELPERS
    + r"""
local now = tonumber(ARGV[1])
local f, err = check(KEYS[1], now, ARGV[2], ARGV[3])
if err then return {err} end
local out = with_record(KEYS[1])
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
return out
"""
)

# KEYS: c m i. ARGV: now, scope user, scope workspaces, message id. Returns {'ok', seq, stored
# message, record pairs...} or {'missing'} (conversation) or {'no_message'}.
GET_MESSAGE = (
    _HELPERS
    + r"""
local now = tonumber(ARGV[1])
local f, err = check(KEYS[1], now, ARGV[2], ARGV[3])
if err then return {err} end
local seq = redis.call('HGET', KEYS[3], ARGV[4])
if not seq then return {'no_message'} end
local value = redis.call('HGET', KEYS[2], seq)
if not value then return {'no_message'} end
local out = with_record(KEYS[1])
table.insert(out, 2, value)
table.insert(out, 2, seq)
return out
"""
)

# KEYS: c m i. ARGV: now, scope user, scope workspaces, seq, expected stored message, new message,
# input token delta, output token delta, preview ('' to keep). Replaces a message only if it is
# still what the caller read (else {'changed'}), then marks activity, slides the expiry and updates
# the totals. Returns {'ok', record pairs...} or {'missing'}.
SWAP_MESSAGE = (
    _HELPERS
    + r"""
local now = tonumber(ARGV[1])
local f, err = check(KEYS[1], now, ARGV[2], ARGV[3])
if err then return {err} end
if redis.call('HGET', KEYS[2], ARGV[4]) ~= ARGV[5] then return {'changed'} end
redis.call('HSET', KEYS[2], ARGV[4], ARGV[6])
redis.call('HSET', KEYS[1], 'active', ARGV[1])
if ARGV[9] ~= '' and redis.call('HGET', KEYS[1], 'last') == ARGV[4] then
  redis.call('HSET', KEYS[1], 'preview', ARGV[9])
end
redis.call('HINCRBY', KEYS[1], 'in', tonumber(ARGV[7]))
redis.call('HINCRBY', KEYS[1], 'out', tonumber(ARGV[8]))
slide(KEYS, now)
return with_record(KEYS[1])
"""
)

# KEYS: c m. ARGV: before ('' none), after ('' none), limit. Reads only the page: the seq range is
# computed from the record, then fetched with one HMGET. Returns {has_more (0/1), messages...}.
PAGE = r"""
local f = redis.call('HMGET', KEYS[1], 'count', 'last')
if not f[1] then return {0} end
local count, last = tonumber(f[1]), tonumber(f[2])
local low, high = last - count + 1, last
local limit = tonumber(ARGV[3])
local start, stop, more
if ARGV[2] ~= '' then
  local ceiling = high
  if ARGV[1] ~= '' then ceiling = math.min(high, tonumber(ARGV[1]) - 1) end
  start = math.max(low, tonumber(ARGV[2]) + 1)
  stop = math.min(ceiling, start + limit - 1)
  more = stop < ceiling
else
  stop = high
  if ARGV[1] ~= '' then stop = math.min(high, tonumber(ARGV[1]) - 1) end
  start = math.max(low, stop - limit + 1)
  more = start > low
end
if start > stop then return {0} end
local seqs = {}
for s = start, stop do seqs[#seqs + 1] = s end
local rows = redis.call('HMGET', KEYS[2], unpack(seqs))
local out = {more and 1 or 0}
for k = 1, #seqs do out[k + 1] = rows[k] or '' end
return out
"""
