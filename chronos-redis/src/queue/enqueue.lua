-- Adds entries whose ids are absent from both sets; returns how many were added.
-- KEYS: due, leased, entries
-- ARGV: channel, origin, then (id, run_at_us, fields-or-empty) triples
local added = 0
for i = 3, #ARGV, 3 do
  local id = ARGV[i]
  if not redis.call('ZSCORE', KEYS[1], id) and not redis.call('ZSCORE', KEYS[2], id) then
    redis.call('ZADD', KEYS[1], ARGV[i + 1], id)
    if ARGV[i + 2] ~= '' then
      redis.call('HSET', KEYS[3], id, ARGV[i + 2])
    end
    added = added + 1
  end
end
if added > 0 then
  redis.call('PUBLISH', ARGV[1], ARGV[2])
end
return added
