-- {scheduled, ready, leased} at now; lapsed leases not yet delivered again count as leased.
-- KEYS: due, leased, lapsed
-- ARGV: now_us
local scheduled = redis.call('ZCOUNT', KEYS[1], '(' .. ARGV[1], '+inf')
local due = redis.call('ZCOUNT', KEYS[1], '-inf', ARGV[1])
local lapsed = tonumber(redis.call('GET', KEYS[3]) or '0')
local leased = redis.call('ZCARD', KEYS[2])
local ready = due - lapsed
if ready < 0 then
  ready = 0
end
return {scheduled, ready, leased + lapsed}
