package store

// CrashRedisSpool stops s's heartbeat without handing its claims back, as
// a SIGKILL would.
func CrashRedisSpool(s *RedisSpool) { s.stopBeating() }
