-- KEYS: c m i. ARGV: message ids. Returns {record pairs (empty when there is none), then for each id:
-- its seq and its stored message ('' when not stored)}.
local out = {redis.call('HGETALL', KEYS[1])}
local found = {}
for k = 1, #ARGV do
  local seq = redis.call('HGET', KEYS[3], ARGV[k])
  found[#found + 1] = seq or ''
  found[#found + 1] = seq and (redis.call('HGET', KEYS[2], seq) or '') or ''
end
out[2] = found
return out
