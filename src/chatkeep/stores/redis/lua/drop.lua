-- KEYS: c m i. ARGV: the stamp read. Drops the conversation unless it changed since. Returns 'ok' or
-- 'changed'.
local f = redis.call('HMGET', KEYS[1], 'rev', 'created')
if (f[1] or '') .. '\31' .. (f[2] or '') ~= ARGV[1] then return 'changed' end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
return 'ok'
