package store

import "github.com/redis/go-redis/v9"

// CrashRedisSpool stops s's heartbeat without handing its claims back, as
// a SIGKILL would.
func CrashRedisSpool(s *RedisSpool) { s.stopBeating() }

// RedisSpoolEventKey is the Redis key of event id in s.
func RedisSpoolEventKey(s *RedisSpool, id string) string { return s.evKey(id) }

// RedisSpoolMarkKey is the Redis key of the de-duplication mark of key in s.
func RedisSpoolMarkKey(s *RedisSpool, key string) string { return s.markKey(key) }

// RedisClient is r's go-redis client, for tests that read raw values.
func RedisClient(r *Redis) redis.UniversalClient { return r.c }

// RedisPrefix is r's key prefix.
func RedisPrefix(r *Redis) string { return r.keys.prefix }
