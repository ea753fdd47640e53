package store

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// The rate budget on Redis: a sliding log per key (a sorted set of admitted
// calls), trimmed and counted by one script on the server's clock.

// redisTakeSlot is the Lua of one admission, shared by takeScript and
// beginTakeScript (redis_claimtake.go) so that a fix reaches both:
// take(key, limit, window, id, again) admits one call if the sliding window
// has room and returns ok (1 or 0), the calls in the window and, when
// refused, the microseconds until the oldest leaves. Scores are server
// microseconds (TIME); entries at or before now-window have left. id names
// the call: with again set (a script that may be running a second time, a
// Cluster client's retry), one already admitted under id is found rather
// than given a second slot.
const redisTakeSlot = `
local function take(key, limit, window, id, again)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local n = redis.call('ZCARD', key)
  if again and redis.call('ZSCORE', key, id) then return 1, n, 0 end
  if n < limit then
    redis.call('ZADD', key, now, id)
    redis.call('PEXPIRE', key, math.ceil(window / 1000) + 1000)
    return 1, n + 1, 0
  end
  local oldest = redis.call('ZRANGE', key, n - limit, n - limit, 'WITHSCORES')
  return 0, n, tonumber(oldest[2]) + window - now
end
`

// takeScript admits one call if the sliding window has room (ARGV: limit,
// window in microseconds, the call's id; any run may be a retry).
var takeScript = redis.NewScript(redisTakeSlot + `
local ok, n, wait = take(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], true)
return {ok, n, wait}
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
