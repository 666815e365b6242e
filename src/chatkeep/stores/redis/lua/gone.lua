-- ARGV: conversation, now. What the tenant still knows of a conversation whose record is gone:
-- {'tomb', owner and expiry} after a sweep, {'expired', owner} before it, or {'missing'}.
local t = redis.call('HGET', tomb, ARGV[1])
if t then return {'tomb', t} end
local e = redis.call('ZSCORE', expz, ARGV[1])
if e and tonumber(e) <= tonumber(ARGV[2]) then
  return {'expired', redis.call('HGET', own, ARGV[1]) or ''}
end
return {'missing'}
