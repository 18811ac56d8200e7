-- Moves a held lease's expiry; returns 1, or 0 when the lease is lost.
-- KEYS: due, leased, entries, lapsed
-- ARGV: id, token, expires_us
local id = ARGV[1]
local v = redis.call('HGET', KEYS[3], id)
if not v or string.match(v, '^[^:]*:[^:]*:[^:]*:([^:]*):') ~= ARGV[2] then
  return 0
end
if not redis.call('ZSCORE', KEYS[2], id) then
  redis.call('ZREM', KEYS[1], id)
  redis.call('DECRBY', KEYS[4], 1)
end
redis.call('ZADD', KEYS[2], ARGV[3], id)
return 1
