-- Releases a held entry to run again at run_at as a new attempt; 1, or 0 when lost.
-- KEYS: due, leased, entries, lapsed
-- ARGV: id, token, run_at_us, fields, channel, origin
local id = ARGV[1]
local v = redis.call('HGET', KEYS[3], id)
if not v or string.match(v, '^[^:]*:[^:]*:[^:]*:([^:]*):') ~= ARGV[2] then
  return 0
end
if redis.call('ZREM', KEYS[2], id) == 0 then
  redis.call('ZREM', KEYS[1], id)
  redis.call('DECRBY', KEYS[4], 1)
end
redis.call('HSET', KEYS[3], id, ARGV[4])
redis.call('ZADD', KEYS[1], ARGV[3], id)
redis.call('PUBLISH', ARGV[5], ARGV[6])
return 1
