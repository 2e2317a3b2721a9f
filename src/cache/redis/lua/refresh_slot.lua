-- Moves a live slot's expiry; an absent or expired member is never resurrected.
-- KEYS[1] set; ARGV member, expires at (ms), now (ms). Returns 1 when refreshed.
local now = tonumber(ARGV[3])
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) <= now then
  return 0
end
redis.call('ZADD', KEYS[1], 'XX', ARGV[2], ARGV[1])
keep_alive(KEYS[1], now)
return 1
