-- Moves lapsed leases back to the due set, then leases up to max due entries.
-- KEYS: due, leased, entries, token, lapsed
-- ARGV: now_us, expires_us, max
-- Returns {{id, run_at_us, attempt, deliveries, token, execution_hex}, ...}
local now, expires, max = ARGV[1], ARGV[2], tonumber(ARGV[3])
local back = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
if #back > 0 then
  local n = 0
  for _, id in ipairs(back) do
    redis.call('ZREM', KEYS[2], id)
    local v = redis.call('HGET', KEYS[3], id)
    if v then
      redis.call('ZADD', KEYS[1], string.match(v, '^([^:]*):'), id)
      n = n + 1
    end
  end
  if n > 0 then
    redis.call('INCRBY', KEYS[5], n)
  end
end
local out = {}
if max <= 0 then
  return out
end
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'WITHSCORES', 'LIMIT', 0, max)
if #due > 0 and redis.call('EXISTS', KEYS[4]) == 0 then
  -- A new or flushed Redis: tokens start at now in microseconds, above every token
  -- issued before a flush (fewer than one per microsecond), so that a worker still
  -- holding a lease from before can never ack or extend a new one.
  redis.call('SET', KEYS[4], now)
end
local relapsed = 0
for i = 1, #due, 2 do
  local id = due[i]
  local run_at, attempt, deliveries, exec = due[i + 1], '0', 0, ''
  local v = redis.call('HGET', KEYS[3], id)
  if v then
    local r, a, d, t, x = string.match(v, '^([^:]*):([^:]*):([^:]*):([^:]*):(.*)$')
    run_at, attempt, deliveries, exec = r, a, tonumber(d), x
    if t ~= '0' then
      relapsed = relapsed + 1
    end
  end
  redis.call('ZREM', KEYS[1], id)
  local token = redis.call('INCR', KEYS[4])
  deliveries = deliveries + 1
  -- %d: Lua's own number-to-string turns integers above 10^14 into floats.
  local fields = run_at .. ':' .. attempt .. ':' .. deliveries .. ':' .. string.format('%d', token)
  redis.call('HSET', KEYS[3], id, fields .. ':' .. exec)
  redis.call('ZADD', KEYS[2], expires, id)
  out[#out + 1] = {id, run_at, attempt, deliveries, token, exec}
end
if relapsed > 0 then
  redis.call('DECRBY', KEYS[5], relapsed)
end
return out
