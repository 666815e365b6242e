-- ARGV: now. {live conversations of the tenant, of the user whose list is given, the rev counter}:
-- what a quota is checked against before INDEX_RESERVE.
local now = tonumber(ARGV[1])
return {redis.call('ZCARD', all) - expired_in(all, now), redis.call('ZCARD', ulist) - expired_in(ulist, now),
        redis.call('GET', rev) or '0'}
