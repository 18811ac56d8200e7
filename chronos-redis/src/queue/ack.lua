-- Removes entries whose lease (token) is still held; returns 1 or 0 per pair.
-- KEYS: due, leased, entries, lapsed
-- ARGV: (id, token) pairs
local res = {}
local relapsed = 0
for i = 1, #ARGV, 2 do
  local id = ARGV[i]
  local ok = 0
  local v = redis.call('HGET', KEYS[3], id)
  if v and string.match(v, '^[^:]*:[^:]*:[^:]*:([^:]*):') == ARGV[i + 1] then
    redis.call('HDEL', KEYS[3], id)
    if redis.call('ZREM', KEYS[2], id) == 0 then
      redis.call('ZREM', KEYS[1], id)
      relapsed = relapsed + 1
    end
    ok = 1
  end
  res[#res + 1] = ok
end
if relapsed > 0 then
  redis.call('DECRBY', KEYS[4], relapsed)
end
return res
