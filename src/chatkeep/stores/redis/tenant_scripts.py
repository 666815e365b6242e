"""The Lua scripts on a tenant's indexes (`{tenant}`): the owner map, the ordered lists (all, per
user, per user and workspace), the expiry index and the tombstones. See `scripts.py` for the
conversation scripts and the conventions both follow."""

from __future__ import annotations

# -- tenant scripts. KEYS always: own, all, user list, user+workspace list, exp, tomb, tombz --------

_TENANT_HELPERS = r"""
local own, all, ulist, uwlist = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local expz, tomb, tombz = KEYS[5], KEYS[6], KEYS[7]

-- Members of `list` that are past their expiry but not swept yet (they do not count as live).
local function expired_in(list, now)
  local due = redis.call('ZRANGEBYSCORE', expz, '-inf', now)
  local n = 0
  for _, c in ipairs(due) do
    if redis.call('ZSCORE', list, c) then n = n + 1 end
  end
  return n
end

local function put(c, owner, score, exp)
  redis.call('HSET', own, c, owner)
  redis.call('ZADD', all, score, c)
  redis.call('ZADD', ulist, score, c)
  redis.call('ZADD', uwlist, score, c)
  if exp ~= '' then redis.call('ZADD', expz, exp, c) else redis.call('ZREM', expz, c) end
  redis.call('HDEL', tomb, c)
  redis.call('ZREM', tombz, c)
end

local function unlist(c)
  redis.call('ZREM', all, c)
  redis.call('ZREM', ulist, c)
  redis.call('ZREM', uwlist, c)
  redis.call('ZREM', expz, c)
  redis.call('HDEL', own, c)
end
"""

# ARGV: conversation, owner, score, exp ('' none).
INDEX_PUT = (
    _TENANT_HELPERS
    + r"""
put(ARGV[1], ARGV[2], ARGV[3], ARGV[4])
return 'ok'
"""
)

# ARGV: conversation, owner, score, exp, now, max per tenant ('' none), max per user ('' none).
# Atomically: refuse a live duplicate, check the counts, list the new conversation.
INDEX_RESERVE = (
    _TENANT_HELPERS
    + r"""
local c, now = ARGV[1], tonumber(ARGV[5])
if redis.call('HEXISTS', own, c) == 1 then
  local e = redis.call('ZSCORE', expz, c)
  if not e or tonumber(e) > now then return {'exists'} end
  unlist(c)
end
if ARGV[6] ~= '' then
  local n = redis.call('ZCARD', all) - expired_in(all, now)
  if n >= tonumber(ARGV[6]) then return {'tenant_limit', n} end
end
if ARGV[7] ~= '' then
  local n = redis.call('ZCARD', ulist) - expired_in(ulist, now)
  if n >= tonumber(ARGV[7]) then return {'user_limit', n} end
end
put(c, ARGV[2], ARGV[3], ARGV[4])
return {'ok'}
"""
)

# ARGV: conversation.
INDEX_REMOVE = (
    _TENANT_HELPERS
    + r"""
unlist(ARGV[1])
return 'ok'
"""
)

# ARGV: now. Live members of the list (all when the user list key is given as the all key).
INDEX_COUNT = (
    _TENANT_HELPERS
    + r"""
return redis.call('ZCARD', ulist) - expired_in(ulist, tonumber(ARGV[1]))
"""
)

# ARGV: conversation, now. What the tenant still knows of a conversation whose record is gone:
# {'tomb', owner and expiry} after a sweep, {'expired', owner} before it, or {'missing'}.
GONE = (
    _TENANT_HELPERS
    + r"""
local t = redis.call('HGET', tomb, ARGV[1])
if t then return {'tomb', t} end
local e = redis.call('ZSCORE', expz, ARGV[1])
if e and tonumber(e) <= tonumber(ARGV[2]) then
  return {'expired', redis.call('HGET', own, ARGV[1]) or ''}
end
return {'missing'}
"""
)

# ARGV: now, limit, keep_ms. Forgets old tombstones, then names the conversations due to expire
# with their owners and expiry: {c1, owner1, exp1, c2, ...}. Changes nothing else: the caller
# checks their records are really gone before SWEEP_FINISH.
SWEEP_DUE = (
    _TENANT_HELPERS
    + r"""
local now = tonumber(ARGV[1])
local old = redis.call('ZRANGEBYSCORE', tombz, '-inf', now - tonumber(ARGV[3]))
for _, c in ipairs(old) do
  redis.call('HDEL', tomb, c)
  redis.call('ZREM', tombz, c)
end
local due = redis.call('ZRANGEBYSCORE', expz, '-inf', now, 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
for k = 1, #due, 2 do
  out[#out + 1] = due[k]
  out[#out + 1] = redis.call('HGET', own, due[k]) or ''
  out[#out + 1] = due[k + 1]
end
return out
"""
)

# ARGV: now, then conversations whose records are gone. Each still due is unlisted and becomes a
# tombstone; returns those it took (so that concurrent sweepers never report one twice). The list
# keys of each conversation's owner are derived here, in the tenant's slot.
SWEEP_FINISH = (
    _TENANT_HELPERS
    + r"""
local now = tonumber(ARGV[1])
local prefix = string.sub(all, 1, #all - 3)
local out = {}
for k = 2, #ARGV do
  local c = ARGV[k]
  local e = redis.call('ZSCORE', expz, c)
  if e and tonumber(e) <= now then
    local owner = redis.call('HGET', own, c) or ''
    local parts = {}
    for p in string.gmatch(owner, '[^\31]+') do parts[#parts + 1] = p end
    if parts[1] and parts[2] then
      redis.call('ZREM', prefix .. 'u:' .. parts[1], c)
      redis.call('ZREM', prefix .. 'uw:' .. parts[1] .. ':' .. parts[2], c)
    end
    redis.call('ZREM', all, c)
    redis.call('ZREM', expz, c)
    redis.call('HDEL', own, c)
    redis.call('HSET', tomb, c, owner .. '\31' .. e)
    redis.call('ZADD', tombz, e, c)
    out[#out + 1] = c
    out[#out + 1] = owner
    out[#out + 1] = e
  end
end
return out
"""
)
