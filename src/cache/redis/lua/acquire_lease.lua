-- Acquires a lease counted in every scope, all or nothing.
-- KEYS scopes (expiring sets); ARGV lease id, expires at (ms), now (ms), then one limit per scope.
-- Returns -1 when granted, else the 0-based index of the first full scope (nothing is taken).
local now = tonumber(ARGV[3])
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
end
for i, key in ipairs(KEYS) do
  if redis.call('ZCARD', key) >= tonumber(ARGV[3 + i]) then
    return i - 1
  end
end
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, ARGV[2], ARGV[1])
  keep_alive(key, now)
end
return -1
