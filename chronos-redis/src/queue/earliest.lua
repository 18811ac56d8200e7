-- The first due entry's run_at and the first lease expiry ('' when none).
-- KEYS: due, leased
local d = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local l = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
return {d[2] or '', l[2] or ''}
