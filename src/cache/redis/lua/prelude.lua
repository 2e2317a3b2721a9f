-- Shared helpers, prepended to every script that keeps an expiring set.

-- Keeps an expiring set's key alive one second past its latest member's expiry (scores are
-- milliseconds since the epoch), so an abandoned set disappears on its own. An empty set has
-- already been deleted by Redis.
local function keep_alive(key, now)
  local top = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  if top[2] then
    redis.call('PEXPIRE', key, math.max(tonumber(top[2]) - now, 0) + 1000)
  end
end

