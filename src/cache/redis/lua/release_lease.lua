-- Releases a lease from every scope.
-- KEYS scopes; ARGV lease id, now (ms).
local now = tonumber(ARGV[2])
for i, key in ipairs(KEYS) do
  redis.call('ZREM', key, ARGV[1])
  keep_alive(key, now)
end
return 0
