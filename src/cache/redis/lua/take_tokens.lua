-- Token bucket (same arithmetic as MemoryCache's `take_tokens`): takes up to `want` tokens.
-- KEYS[1] bucket hash {tokens, ts}; ARGV capacity (>= 1), refill per second (> 0), now (ms),
-- want (>= 1).
-- Returns {tokens granted, whole tokens left, retry after (ms) when fewer than `want` were granted}.
local MAX_TTL = 366 * 24 * 3600 * 1000
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local want = math.max(tonumber(ARGV[4]), 1)
local stored = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(stored[1])
local stamp = tonumber(stored[2])
if tokens == nil or stamp == nil then
  tokens = capacity
  stamp = now
end
-- A clock that went backwards refills nothing and keeps the later stamp.
if now > stamp then
  tokens = tokens + (now - stamp) / 1000.0 * rate
  stamp = now
end
tokens = math.min(tokens, capacity)
local granted = math.max(math.min(math.floor(tokens), want), 0)
tokens = tokens - granted
local retry = 0
if granted < want then
  retry = math.min(math.ceil((1 - tokens) / rate * 1000), MAX_TTL)
end
local keep = math.min(math.ceil((capacity - tokens) / rate * 1000) + 1000, MAX_TTL)
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'ts', string.format('%.0f', stamp))
redis.call('PEXPIRE', KEYS[1], keep)
return {granted, math.floor(tokens), retry}
