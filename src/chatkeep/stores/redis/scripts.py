"""The Lua scripts of the Redis store.

Redis Cluster runs a script on one hash slot only, so there are two families (this module holds
the first, `tenant_scripts.py` the second):

- conversation scripts, on the keys of one conversation (`{tenant:conversation}`): the record hash
  `c`, the messages `m` (seq -> message) and the ids `i` (message id -> seq). They know no rule:
  READ takes a snapshot, the store plans the write with `chatkeep.domain`, and COMMIT applies the
  planned write set only if the conversation's revision is still the one read (a conditional
  commit; the store plans again on a lost race).
- tenant scripts, on the tenant's indexes (`{tenant}`): the owner map, the ordered lists (all, per
  user, per user and workspace), the expiry index and the tombstones.

The record's `rev` field changes with every write (it starts at a random value, so a conversation
deleted and created again never repeats one); a snapshot's stamp is its `rev` and `created`.
"""

from __future__ import annotations

# KEYS: c m i. ARGV: message ids. Returns {record pairs (empty when there is none), then for each id:
# its seq and its stored message ('' when not stored)}.
READ = r"""
local out = {redis.call('HGETALL', KEYS[1])}
local found = {}
for k = 1, #ARGV do
  local seq = redis.call('HGET', KEYS[3], ARGV[k])
  found[#found + 1] = seq or ''
  found[#found + 1] = seq and (redis.call('HGET', KEYS[2], seq) or '') or ''
end
out[2] = found
return out
"""

# KEYS: c m i. ARGV: the stamp read ('rev' \x1f 'created'; '\x1f' for no record), 'reset' or '' (drop
# the three keys first), the expiry (ms, or '' for none), then for c, m and i in turn: a count n
# and n field/value pairs to set. Returns 'ok', or 'changed' (nothing written) when the stamp moved.
COMMIT = r"""
local f = redis.call('HMGET', KEYS[1], 'rev', 'created')
if (f[1] or '') .. '\31' .. (f[2] or '') ~= ARGV[1] then return 'changed' end
if ARGV[2] == 'reset' then redis.call('DEL', KEYS[1], KEYS[2], KEYS[3]) end
local pos = 4
for k = 1, 3 do
  local n = tonumber(ARGV[pos])
  pos = pos + 1
  local stop = pos + 2 * n - 1
  while pos <= stop do
    local upto = math.min(stop, pos + 999)
    redis.call('HSET', KEYS[k], unpack(ARGV, pos, upto))
    pos = upto + 1
  end
end
redis.call('HINCRBY', KEYS[1], 'rev', 1)
for _, key in ipairs(KEYS) do
  if ARGV[3] ~= '' then redis.call('PEXPIREAT', key, ARGV[3]) else redis.call('PERSIST', key) end
end
return 'ok'
"""

# KEYS: c m i. ARGV: the stamp read. Drops the conversation unless it changed since. Returns 'ok' or
# 'changed'.
DROP = r"""
local f = redis.call('HMGET', KEYS[1], 'rev', 'created')
if (f[1] or '') .. '\31' .. (f[2] or '') ~= ARGV[1] then return 'changed' end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
return 'ok'
"""
