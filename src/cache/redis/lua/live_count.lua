-- Counts members of an expiring set whose expiry is after now.
-- KEYS[1] set; ARGV now (ms).
return redis.call('ZCOUNT', KEYS[1], '(' .. ARGV[1], '+inf')
