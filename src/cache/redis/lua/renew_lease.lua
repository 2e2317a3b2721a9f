-- Renews a lease in every scope when it is live in all of them; otherwise removes it from all
-- (an expired lease is never revived: its room may already be taken).
-- KEYS scopes; ARGV lease id, expires at (ms), now (ms). Returns 1 when renewed.
local now = tonumber(ARGV[3])
local live = true
for i, key in ipairs(KEYS) do
  local score = redis.call('ZSCORE', key, ARGV[1])
  if not score or tonumber(score) <= now then
    live = false
  end
end
for i, key in ipairs(KEYS) do
  if live then
    redis.call('ZADD', key, 'XX', ARGV[2], ARGV[1])
  else
    redis.call('ZREM', key, ARGV[1])
  end
  keep_alive(key, now)
end
if live then
  return 1
end
return 0
