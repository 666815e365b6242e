-- ARGV: now, a conversation id. {live conversations of the tenant, of the user whose list is given,
-- the rev counter, 1 if the id is taken by a live conversation else 0}: what a create checks its
-- quota against before INDEX_RESERVE.
local now = tonumber(ARGV[1])
return {redis.call('ZCARD', all) - expired_in(all, now), redis.call('ZCARD', ulist) - expired_in(ulist, now),
        redis.call('GET', rev) or '0', listed_live(ARGV[2], now) and 1 or 0}
