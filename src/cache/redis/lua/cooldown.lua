-- Cooldown check-and-set.
-- KEYS[1] mark (ms timestamp); ARGV cooldown (ms, >= 1), now (ms).
-- Returns -1 when allowed (the mark is set to now for the cooldown), else the ms left.
local cooldown = tonumber(ARGV[1])
local now = tonumber(ARGV[2])
local raw = redis.call('GET', KEYS[1])
if raw then
  local last = tonumber(raw)
  if last == nil then
    return redis.error_reply('FCTF_MALFORMED not a cooldown timestamp')
  end
  local elapsed = now - last
  if elapsed < cooldown then
    local left = cooldown - math.max(elapsed, 0)
    -- The mark must outlive the cooldown it enforces.
    if redis.call('PTTL', KEYS[1]) < left then
      redis.call('PEXPIRE', KEYS[1], left)
    end
    return left
  end
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', cooldown)
return -1
