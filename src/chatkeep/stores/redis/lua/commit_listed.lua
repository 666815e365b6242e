-- KEYS: the tenant's index keys (as for every tenant script), then the conversation's c m i. ARGV:
-- COMMIT's four, then what INDEX_PUT takes (conversation, owner, score, exp). The indexes are
-- brought in line with the record only when the commit is made. Returns what COMMIT returns.
local answer = commit(KEYS[9], KEYS[10], KEYS[11])
if answer == 'ok' then put(ARGV[5], ARGV[6], ARGV[7], ARGV[8]) end
return answer
