-- Gives one unit back to a counter that exists and is above zero (its TTL is kept).
-- KEYS[1] counter. Returns 1 when decremented.
local raw = redis.call('GET', KEYS[1])
if not raw then
  return 0
end
local count = tonumber(raw)
if count == nil or count < 0 or count ~= math.floor(count) then
  return redis.error_reply('FCTF_MALFORMED not a non-negative integer counter')
end
if count > 0 then
  redis.call('DECR', KEYS[1])
  return 1
end
return 0
