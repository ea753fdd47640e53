package caddymodule

import (
	"context"
	"sort"
	"sync"

	"github.com/qrphgate/qrphgate/proxy/outbound"
	"github.com/qrphgate/qrphgate/store"
)

// What modulus_health checks, found in the same process: the live
// modulus_api engines (registered here as they are provisioned, gone when
// cleaned up), the webhook spools (webhookWorkers) and the pooled Redis
// connections (storePool).

// healthEngine is a live modulus_api engine as modulus_health sees it.
type healthEngine struct {
	env, account string
	engine       *outbound.Handler
}

// healthEngines lists the live modulus_api engines by their status name.
var healthEngines = &statusBoard{sources: make(map[string]map[string]statusSource)}

// registerHealthEngine adds a provisioned engine and returns the function
// that removes it (only it, should a reload register the same name).
func registerHealthEngine(name, env, account string, e *outbound.Handler) func() {
	return healthEngines.register("outbound", name, func() any { return healthEngine{env: env, account: account, engine: e} })
}

// liveHealthEngines returns the live engines in name order.
func liveHealthEngines() []healthEngine {
	m := healthEngines.snapshot()["outbound"]
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]healthEngine, 0, len(names))
	for _, n := range names {
		out = append(out, m[n].(healthEngine))
	}
	return out
}

// liveRedisStores returns the pooled Redis connections (modulus_api's
// store, modulus_webhook's store and spool), by metric label.
func liveRedisStores() map[string]*store.Redis {
	out := make(map[string]*store.Redis)
	storePool.Range(func(_, v any) bool {
		if c, ok := v.(redisConn); ok {
			out[storeLabel(c.Name())] = c.Redis
		}
		return true
	})
	return out
}

// webhookRedis counts, per pooled Redis connection, the live
// modulus_webhook handlers that cannot take a webhook without it: their
// spool is on it, or their de-duplication is shared through it (store).
// Readiness calls such a server unavailable when it does not answer; one
// that only other things use (modulus_api's store, the ledger, a rate
// limiter) is degraded then, since this replica still takes webhooks.
var webhookRedis = struct {
	sync.Mutex
	refs map[*store.Redis]int
}{refs: map[*store.Redis]int{}}

// dependOnRedis records that a handler's webhooks depend on r, and returns
// the function that forgets it (once).
func dependOnRedis(r *store.Redis) (release func()) {
	webhookRedis.Lock()
	webhookRedis.refs[r]++
	webhookRedis.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			webhookRedis.Lock()
			defer webhookRedis.Unlock()
			if webhookRedis.refs[r]--; webhookRedis.refs[r] <= 0 {
				delete(webhookRedis.refs, r)
			}
		})
	}
}

// webhooksNeed reports whether a live modulus_webhook depends on r.
func webhooksNeed(r *store.Redis) bool {
	webhookRedis.Lock()
	defer webhookRedis.Unlock()
	return webhookRedis.refs[r] > 0
}

// spoolProber is a spool that can prove it takes writes (store.BoltSpool,
// and a Redis spool through its server).
type spoolProber interface {
	Probe(ctx context.Context) error
}

// Probe makes a Redis spool's writability probe: a write on its server.
func (s redisSpool) Probe(ctx context.Context) error { return s.Store().ProbeWrite(ctx) }

// Interface guards.
var (
	_ spoolProber = (*store.BoltSpool)(nil)
	_ spoolProber = redisSpool{}
)
