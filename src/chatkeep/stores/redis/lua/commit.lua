-- The conditional commit of one conversation's keys c, m and i. ARGV from 1: the stamp read ('rev'
-- \x1f 'created'; '\x1f' for no record), 'reset' or '' (drop the three keys first), the expiry (ms,
-- or '' for none), and the write set: a JSON array of four arrays of strings, the message ids that
-- must not be stored, then the field/value pairs to set in c, in m and in i. Returns 'ok', or
-- 'changed' (nothing written) when the stamp moved or one of those ids is stored.
local function commit(c, m, i)
  local f = redis.call('HMGET', c, 'rev', 'created')
  if (f[1] or '') .. '\31' .. (f[2] or '') ~= ARGV[1] then return 'changed' end
  local writes = cjson.decode(ARGV[4])
  for _, id in ipairs(writes[1]) do
    if redis.call('HEXISTS', i, id) == 1 then return 'changed' end
  end
  if ARGV[2] == 'reset' then redis.call('DEL', c, m, i) end
  local keys = {c, m, i}
  for k = 1, 3 do
    local set = writes[k + 1]
    for from = 1, #set, 1000 do
      redis.call('HSET', keys[k], unpack(set, from, math.min(#set, from + 999)))
    end
  end
  redis.call('HINCRBY', c, 'rev', 1)
  for _, key in ipairs(keys) do
    if ARGV[3] ~= '' then redis.call('PEXPIREAT', key, ARGV[3]) else redis.call('PERSIST', key) end
  end
  return 'ok'
end
