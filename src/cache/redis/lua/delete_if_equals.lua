-- Owner-checked lock release.
-- KEYS[1] lock; ARGV[1] expected owner. Returns 1 when deleted.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
