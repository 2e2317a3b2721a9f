-- Releases a slot.
-- KEYS[1] set; ARGV member, now (ms). Returns 1 when the member held a live slot.
local now = tonumber(ARGV[2])
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score then
  return 0
end
redis.call('ZREM', KEYS[1], ARGV[1])
keep_alive(KEYS[1], now)
if tonumber(score) > now then
  return 1
end
return 0
