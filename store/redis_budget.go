package store

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// The rate budget on Redis: a sliding log per key (a sorted set of admitted
// calls), trimmed and counted by one script on the server's clock.

// takeScript admits one call if the sliding window has room. Scores are
// server microseconds; entries at or before now-window have left. ARGV[3]
// names the call: run again (a Cluster client's retry), the script finds
// it admitted rather than take a second slot.
var takeScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local n = redis.call('ZCARD', KEYS[1])
if redis.call('ZSCORE', KEYS[1], ARGV[3]) then return {1, n, 0} end
if n < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000) + 1000)
  return {1, n + 1, 0}
end
local oldest = redis.call('ZRANGE', KEYS[1], n - limit, n - limit, 'WITHSCORES')
return {0, n, tonumber(oldest[2]) + window - now}
`)

var usageScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[1]))
return redis.call('ZCARD', KEYS[1])
`)

// Take implements RateBudget.
func (r *Redis) Take(ctx context.Context, key string, limit int, window time.Duration) (Grant, error) {
	res, err := takeScript.Run(ctx, r.c, []string{r.keys.budget(key)}, limit, window.Microseconds(), callID()).Int64Slice()
	if err != nil {
		return Grant{}, unavailable("take", err)
	}
	if len(res) != 3 {
		return Grant{}, unavailable("take", fmt.Errorf("unexpected reply of %d values", len(res)))
	}
	return Grant{OK: res[0] == 1, Used: int(res[1]), RetryAfter: time.Duration(res[2]) * time.Microsecond}, nil
}

// Usage implements RateBudget.
func (r *Redis) Usage(ctx context.Context, key string, window time.Duration) (int, error) {
	n, err := usageScript.Run(ctx, r.c, []string{r.keys.budget(key)}, window.Microseconds()).Int()
	if err != nil {
		return 0, unavailable("usage", err)
	}
	return n, nil
}

// Interface guard.
var _ RateBudget = (*Redis)(nil)
