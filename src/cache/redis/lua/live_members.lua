-- Members of an expiring set whose expiry is after now, soonest first.
-- KEYS[1] set; ARGV now (ms).
return redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf')
