package store

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/ulule/limiter/v3"
	"github.com/ulule/limiter/v3/drivers/store/memory"
	limredis "github.com/ulule/limiter/v3/drivers/store/redis"

	"github.com/qrphgate/qrphgate/internal/clock"
)

// Windows counts hits per key in fixed windows, on the stores of
// github.com/ulule/limiter/v3: in this process's memory, or on a Redis
// server that every process naming it shares. A window starts with its
// first hit and lasts its period; a fixed window lets up to twice the limit
// through across the edge between two windows, which is harmless for abuse
// protection (the webhook endpoint's limits, per-merchant caps) and never
// acceptable for the provider's own budget: that is RateBudget, an exact
// sliding log.
type Windows struct {
	prefix string
	redis  *Redis // nil for memory
	// clk paces the retries of a Redis server that is down (the Redis
	// store's clock) and measures Retry-After. The windows themselves are
	// ulule/limiter's, on the real clock (it reads it itself).
	clk clock.Clock

	mu      sync.Mutex
	st      limiter.Store // nil until a Redis store loaded its scripts
	lastTry time.Time     // last use of a Redis store, or attempt to load one
}

// WindowHit is the answer of Windows.Hit.
type WindowHit struct {
	// Allowed is false when this hit went over the window's limit.
	Allowed bool
	// Remaining is what the window still admits after this hit.
	Remaining int
	// RetryAfter is, when !Allowed, the wait until the window ends
	// (rounded up to a whole second, at least one).
	RetryAfter time.Duration
}

// windowsPrefix namespaces the counters' keys ("<prefix>:<key>").
const windowsPrefix = "limit"

// NewMemoryWindows returns counters held in this process. The store runs a
// cleaner goroutine for the life of the process (ulule/limiter stops it
// only when the store is garbage-collected), so make one per process and
// share it.
func NewMemoryWindows() *Windows {
	return &Windows{clk: clock.Real(), st: memory.NewStoreWithOptions(limiter.StoreOptions{
		Prefix: windowsPrefix, CleanUpInterval: time.Minute,
	})}
}

// NewRedisWindows returns counters on r's server, under r's key prefix, so
// that every process naming the server shares them. It needs no answer
// from the server yet: the store's scripts are loaded on the first hit the
// server answers, and until then every hit fails with ErrUnavailable.
func NewRedisWindows(r *Redis) *Windows {
	return &Windows{prefix: r.keys.prefix + windowsPrefix, redis: r, clk: r.clk}
}

// redisRetryEvery bounds how often hits try a server known to be down (its
// health state, kept up to date by the connection's pinger): between tries
// they fail at once (errServerDown) instead of each waiting for a dial.
const redisRetryEvery = time.Second

// errServerDown is a hit's failure between two tries of a server that is
// down.
var errServerDown = errors.New("server down (not tried again yet)")

// Hit counts one hit under key in a window of period that admits limit
// hits. A failure to reach the Redis server wraps ErrUnavailable; the
// caller decides whether to let the request through.
func (w *Windows) Hit(ctx context.Context, key string, limit int, period time.Duration) (WindowHit, error) {
	if limit <= 0 || period <= 0 {
		return WindowHit{}, errors.New("store: a window needs a positive limit and period")
	}
	st, err := w.store(ctx)
	if err != nil {
		return WindowHit{}, err
	}
	c, err := st.Get(ctx, key, limiter.Rate{Period: period, Limit: int64(limit)})
	if err != nil {
		return WindowHit{}, unavailable("limiter", err)
	}
	hit := WindowHit{Allowed: !c.Reached, Remaining: int(c.Remaining)}
	if c.Reached {
		// Reset is the window's end in whole Unix seconds, truncated.
		hit.RetryAfter = max(time.Unix(c.Reset+1, 0).Sub(w.clk.Now()).Truncate(time.Second), time.Second)
	}
	return hit, nil
}

// store returns the limiter store, loading a Redis store's scripts on
// first use (ulule/limiter loads them when the store is made, which fails
// while the server is down).
func (w *Windows) store(ctx context.Context) (limiter.Store, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.redis == nil {
		return w.st, nil
	}
	now := w.clk.Now()
	if w.st != nil {
		if !w.redis.State().Up && now.Sub(w.lastTry) < redisRetryEvery {
			return nil, unavailable("limiter", errServerDown)
		}
		w.lastTry = now
		return w.st, nil
	}
	if now.Sub(w.lastTry) < redisRetryEvery && !w.redis.State().Up {
		return nil, unavailable("limiter", errServerDown)
	}
	w.lastTry = now
	st, err := limredis.NewStoreWithOptions(w.redis.c, limiter.StoreOptions{Prefix: w.prefix})
	if err != nil {
		return nil, unavailable("limiter scripts", err)
	}
	w.st = st
	return st, nil
}
