-- ARGV: now. Live members of the list (all when the user list key is given as the all key).
return redis.call('ZCARD', ulist) - expired_in(ulist, tonumber(ARGV[1]))
