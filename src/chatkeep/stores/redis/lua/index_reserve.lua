-- ARGV: conversation, owner, score, exp, now, the rev counter the caller's quota check read ('' when
-- it checked none). Refuses a live duplicate ({'exists'}), answers {'changed'} when the rev counter
-- moved since the check, else lists the new conversation ({'ok'}).
local c, now = ARGV[1], tonumber(ARGV[5])
if listed_live(c, now) then return {'exists'} end
if redis.call('HEXISTS', own, c) == 1 then unlist(c) end
if ARGV[6] ~= '' and (redis.call('GET', rev) or '0') ~= ARGV[6] then return {'changed'} end
put(c, ARGV[2], ARGV[3], ARGV[4])
return {'ok'}
