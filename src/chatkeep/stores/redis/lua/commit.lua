-- KEYS: c m i. ARGV: the stamp read ('rev' \x1f 'created'; '\x1f' for no record), 'reset' or '' (drop
-- the three keys first), the expiry (ms, or '' for none), a count n and n message ids that must not
-- be stored, then for c, m and i in turn: a count n and n field/value pairs to set. Returns 'ok', or
-- 'changed' (nothing written) when the stamp moved or one of those ids is stored.
local f = redis.call('HMGET', KEYS[1], 'rev', 'created')
if (f[1] or '') .. '\31' .. (f[2] or '') ~= ARGV[1] then return 'changed' end
local absent = tonumber(ARGV[4])
for k = 5, 4 + absent do
  if redis.call('HEXISTS', KEYS[3], ARGV[k]) == 1 then return 'changed' end
end
if ARGV[2] == 'reset' then redis.call('DEL', KEYS[1], KEYS[2], KEYS[3]) end
local pos = 5 + absent
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
