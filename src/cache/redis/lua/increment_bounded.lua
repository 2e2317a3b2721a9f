-- Bounded counter (attempt budgets).
-- KEYS[1] counter; ARGV max, initial (seed when missing), ttl (ms, >= 1).
-- Returns the new count, or -1 when the counter is already at max.
local max = tonumber(ARGV[1])
local raw = redis.call('GET', KEYS[1])
local count
if raw then
  count = tonumber(raw)
  if count == nil or count < 0 or count ~= math.floor(count) then
    return redis.error_reply('FCTF_MALFORMED not a non-negative integer counter')
  end
  if redis.call('PTTL', KEYS[1]) == -1 then
    redis.call('PEXPIRE', KEYS[1], ARGV[3])
  end
else
  count = tonumber(ARGV[2])
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
end
if count >= max then
  return -1
end
return redis.call('INCR', KEYS[1])
