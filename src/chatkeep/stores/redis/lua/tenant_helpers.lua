-- Shared by the tenant index scripts. KEYS always: own, all, user list, user+workspace list, exp,
-- tomb, tombz, rev (a counter that moves whenever a conversation joins or leaves the tenant's list).
local own, all, ulist, uwlist = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local expz, tomb, tombz, rev = KEYS[5], KEYS[6], KEYS[7], KEYS[8]

-- Members of `list` that are past their expiry but not swept yet (they do not count as live).
local function expired_in(list, now)
  local due = redis.call('ZRANGEBYSCORE', expz, '-inf', now)
  local n = 0
  for _, c in ipairs(due) do
    if redis.call('ZSCORE', list, c) then n = n + 1 end
  end
  return n
end

-- Whether the tenant lists `c` as a conversation that has not expired.
local function listed_live(c, now)
  if redis.call('HEXISTS', own, c) == 0 then return false end
  local e = redis.call('ZSCORE', expz, c)
  return not e or tonumber(e) > now
end

local function put(c, owner, score, exp)
  redis.call('HSET', own, c, owner)
  if redis.call('ZADD', all, score, c) == 1 then redis.call('INCR', rev) end
  redis.call('ZADD', ulist, score, c)
  redis.call('ZADD', uwlist, score, c)
  if exp ~= '' then redis.call('ZADD', expz, exp, c) else redis.call('ZREM', expz, c) end
  redis.call('HDEL', tomb, c)
  redis.call('ZREM', tombz, c)
end

local function unlist(c)
  if redis.call('ZREM', all, c) == 1 then redis.call('INCR', rev) end
  redis.call('ZREM', ulist, c)
  redis.call('ZREM', uwlist, c)
  redis.call('ZREM', expz, c)
  redis.call('HDEL', own, c)
end
