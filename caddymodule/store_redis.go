package caddymodule

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/qrphgate/qrphgate/policy"
	"github.com/qrphgate/qrphgate/store"
)

// Store availability metrics, one series per Redis server. Metrics carry
// no addresses: the label is an id derived from the server's address and
// database, and /modulus/status shows which server has which id.
const (
	metricStoreUp          = "qrphgate_store_up"
	metricStoreTransitions = "qrphgate_store_transitions_total"
)

// redisPingEvery is how often a pooled connection pings its server, so its
// state (and the metric) follows the server without traffic.
const redisPingEvery = 2 * time.Second

// redisConn is a pooled connection shared by every handler that names the
// same server (modulus_api's store, modulus_webhook's store and spool), so
// that a reload keeps it and one outage is reported once.
type redisConn struct {
	*store.Redis
	unstatus func()
}

func (c redisConn) Destruct() error {
	c.unstatus()
	return c.Close()
}

// acquireRedis returns the pooled connection for a Redis URL (any form)
// spec whose placeholders are already resolved, and the function that
// releases it. The server need not be reachable yet: calls fail with
// store.ErrUnavailable (the documented failure mode) until it answers.
func acquireRedis(ctx context.Context, resolved string) (*store.Redis, func() error, error) {
	key := "redis|" + resolved // may hold a password: never logged
	// The client library's own messages (one per failed dial) go to debug,
	// through the logger of the running config; the outage itself is
	// logged once per transition.
	store.SetRedisLogger(caddy.Log().Named("modulus.store.redis"))
	v, _, err := storePool.LoadOrNew(key, func() (caddy.Destructor, error) {
		octx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		r, err := store.OpenRedis(octx, resolved, store.RedisOptions{
			AllowDown: true, PingEvery: redisPingEvery, AtRest: atRest,
			Logger:   caddy.Log().Named("modulus.store"),
			Observer: storeMetrics{},
		})
		if err != nil {
			return nil, fmt.Errorf("store %s: %w", store.RedactURL(resolved), err)
		}
		metricsSet.GetOrCreateCounter(storeSeries(metricStoreTransitions, r.Name(), "down"))
		metricsSet.GetOrCreateCounter(storeSeries(metricStoreTransitions, r.Name(), "up"))
		setStoreUp(r.Name(), r.State().Up)
		label := storeLabel(r.Name())
		unstatus := status.register("stores", r.Name(), func() any { return storeStatus{RedisState: r.State(), Label: label} })
		return redisConn{Redis: r, unstatus: unstatus}, nil
	})
	if err != nil {
		return nil, nil, err
	}
	return v.(redisConn).Redis, poolRelease(key), nil
}

// storeMetrics implements store.RedisObserver for every pooled connection.
type storeMetrics struct{}

// StateChanged counts the transition and sets the store's gauge.
func (storeMetrics) StateChanged(name string, up bool) {
	to := "down"
	if up {
		to = "up"
	}
	metricsSet.GetOrCreateCounter(storeSeries(metricStoreTransitions, name, to)).Inc()
	setStoreUp(name, up)
}

func setStoreUp(name string, up bool) {
	v := 0.0
	if up {
		v = 1
	}
	metricsSet.GetOrCreateGauge(storeSeries(metricStoreUp, name, ""), nil).Set(v)
}

// storeStatus is a Redis server's entry under "stores" in /modulus/status.
type storeStatus struct {
	store.RedisState
	// Label is the server's store label in the metrics.
	Label string `json:"metric_label"`
}

// storeLabel is the metric label of the server called name: "redis-" and
// six hex digits of a digest of its address and database.
func storeLabel(name string) string {
	sum := sha256.Sum256([]byte(name))
	return "redis-" + hex.EncodeToString(sum[:3])
}

func storeSeries(metric, name, to string) string {
	if to == "" {
		return fmt.Sprintf(`%s{store=%q}`, metric, storeLabel(name))
	}
	return fmt.Sprintf(`%s{store=%q,to=%q}`, metric, storeLabel(name), to)
}

// checkRedisPassword refuses an inline password in a Redis URL as it was
// configured (before placeholders are resolved): it would sit in the
// adapted config. The sandbox tolerates one, like the other secrets.
func checkRedisPassword(field, raw, environment string) error {
	if pw := redisPassword(raw); pw != "" && !secretPlaceholder.MatchString(pw) && environment != policy.Sandbox {
		return fmt.Errorf("%s: give the Redis password as {env.NAME} or {file.PATH}: an inline one is stored in the config", field)
	}
	return nil
}

// resolveRedisURL resolves the placeholders of a Redis URL (any form).
// Values in the user-info part (the password) are percent-escaped: pasted
// raw, a password with '/', '@', '#' or '%' would break the URL, and could
// even be parsed as its host, which logs and errors show.
func resolveRedisURL(repl *caddy.Replacer, spec string) string {
	_, rest, ok := strings.Cut(spec, "://")
	at := strings.LastIndex(rest, "@")
	if !ok || at < 0 {
		return repl.ReplaceKnown(spec, "")
	}
	prefix := spec[:len(spec)-len(rest)]
	userinfo, _ := repl.ReplaceFunc(rest[:at], func(_ string, v any) (any, error) {
		return url.PathEscape(fmt.Sprint(v)), nil
	})
	return prefix + userinfo + "@" + repl.ReplaceKnown(rest[at+1:], "")
}

// Interface guard.
var _ store.RedisObserver = storeMetrics{}
