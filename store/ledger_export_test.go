package store

// LedgerRedisPrefix is the key prefix of the Redis store under l.
func LedgerRedisPrefix(l *RedisLedger) string { return l.r.keys.prefix }
