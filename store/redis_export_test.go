package store

// CrashRedisSpool stops s's heartbeat without handing its claims back, as
// a SIGKILL would.
func CrashRedisSpool(s *RedisSpool) { s.stopBeating() }

// RedisSpoolEventKey is the Redis key of event id in s.
func RedisSpoolEventKey(s *RedisSpool, id string) string { return s.evKey(id) }

// RedisSpoolMarkKey is the Redis key of the de-duplication mark of key in s.
func RedisSpoolMarkKey(s *RedisSpool, key string) string { return s.markKey(key) }
