-- The conditional commit of one conversation's keys c, m and i. ARGV from 1: the stamp read ('rev'
-- \x1f 'created'; '\x1f' for no record), 'reset' or '' (drop the three keys first), the expiry (ms,
-- or '' for none), a count n and n message ids that must not be stored, then for c, m and i in turn:
-- a count n and n field/value pairs to set. Returns 'ok' and the position in ARGV after these
-- arguments, or 'changed' (nothing written) when the stamp moved or one of those ids is stored.
local function commit(c, m, i)
  local f = redis.call('HMGET', c, 'rev', 'created')
  if (f[1] or '') .. '\31' .. (f[2] or '') ~= ARGV[1] then return 'changed' end
  local absent = tonumber(ARGV[4])
  for k = 5, 4 + absent do
    if redis.call('HEXISTS', i, ARGV[k]) == 1 then return 'changed' end
  end
  local keys = {c, m, i}
  if ARGV[2] == 'reset' then redis.call('DEL', c, m, i) end
  local pos = 5 + absent
  for k = 1, 3 do
    local n = tonumber(ARGV[pos])
    pos = pos + 1
    local stop = pos + 2 * n - 1
    while pos <= stop do
      local upto = math.min(stop, pos + 999)
      redis.call('HSET', keys[k], unpack(ARGV, pos, upto))
      pos = upto + 1
    end
  end
  redis.call('HINCRBY', c, 'rev', 1)
  for _, key in ipairs(keys) do
    if ARGV[3] ~= '' then redis.call('PEXPIREAT', key, ARGV[3]) else redis.call('PERSIST', key) end
  end
  return 'ok', pos
end
