-- ARGV: now, then conversations whose records are gone. Each still due is unlisted and becomes a
-- tombstone; returns those it took (so that concurrent sweepers never report one twice). The list
-- keys of each conversation's owner are derived here, in the tenant's slot.
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
    if redis.call('ZREM', all, c) == 1 then redis.call('INCR', rev) end
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
