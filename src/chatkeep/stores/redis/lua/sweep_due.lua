-- ARGV: now, limit, keep_ms. Forgets old tombstones, then names the conversations due to expire
-- with their owners and expiry: {c1, owner1, exp1, c2, ...}. Changes nothing else: the caller
-- checks their records are really gone before SWEEP_FINISH.
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
