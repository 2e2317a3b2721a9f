-- Reserves a slot in an expiring set (scores: expiry in ms since the epoch).
-- KEYS[1] set; ARGV member, limit, expires at (ms), now (ms).
-- Returns 0 Reserved, 1 AlreadyHeld, 2 LimitReached.
local now = tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  return 1
end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return 2
end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
keep_alive(KEYS[1], now)
return 0
