-- KEYS: the tenant's index keys (as for every tenant script), then the conversation's c m i, then
-- the index of streaming replies. ARGV: COMMIT's four, then what INDEX_PUT takes (conversation,
-- owner, score, exp), then pairs of a streaming reply (its member in that index) and when it last
-- grew ('' when it no longer streams). The indexes are brought in line with the record only when
-- the commit is made. Returns what COMMIT returns.
local answer = commit(KEYS[9], KEYS[10], KEYS[11])
if answer == 'ok' then
  put(ARGV[5], ARGV[6], ARGV[7], ARGV[8])
  for k = 9, #ARGV, 2 do
    if ARGV[k + 1] == '' then
      redis.call('ZREM', KEYS[12], ARGV[k])
    else
      redis.call('ZADD', KEYS[12], ARGV[k + 1], ARGV[k])
    end
  end
end
return answer
