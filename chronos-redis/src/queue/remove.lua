-- Removes the entry, waiting or leased; returns 1 if there was one.
-- KEYS: due, leased, entries, lapsed
-- ARGV: id
local id = ARGV[1]
if redis.call('ZREM', KEYS[2], id) == 1 then
  redis.call('HDEL', KEYS[3], id)
  return 1
end
if redis.call('ZREM', KEYS[1], id) == 1 then
  local v = redis.call('HGET', KEYS[3], id)
  if v then
    if string.match(v, '^[^:]*:[^:]*:[^:]*:([^:]*):') ~= '0' then
      redis.call('DECRBY', KEYS[4], 1)
    end
    redis.call('HDEL', KEYS[3], id)
  end
  return 1
end
return 0
