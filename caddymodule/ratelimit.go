package caddymodule

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/qrphgate/qrphgate/policy"
	"github.com/qrphgate/qrphgate/proxy"
	"github.com/qrphgate/qrphgate/proxy/outbound"
	"github.com/qrphgate/qrphgate/store"
)

// The fixed-window rate limits (github.com/ulule/limiter/v3) of
// modulus_webhook (rate_limit, rate_limit_per_ip) and modulus_api
// (merchant_rate_limit). They count on a Redis server where the handler
// already has one, so that replicas share the counts, and otherwise in
// this process; they fail open when Redis cannot be reached.

// metricLimiterFailOpen counts requests let through without a rate limit
// because the limiter's store could not be reached; limiter is "webhook"
// or "merchant".
const metricLimiterFailOpen = "qrphgate_ratelimit_fail_open_total"

// processWindows are the counters of this process: one ulule/limiter
// memory store (and its cleaner goroutine) for every handler and config,
// so counts survive a reload.
var processWindows = sync.OnceValue(store.NewMemoryWindows)

func failOpenCounter(limiter string) {
	metricsSet.GetOrCreateCounter(metricLimiterFailOpen + `{limiter="` + limiter + `"}`).Inc()
}

// LimiterFailedOpen implements inbound.Observer.
func (webhookMetrics) LimiterFailedOpen() { failOpenCounter("webhook") }

// LimiterFailedOpen implements outbound.Observer.
func (apiMetrics) LimiterFailedOpen() { failOpenCounter("merchant") }

// webhookLimiter returns the limiter of a modulus_webhook and the function
// that releases what it holds: counted on the server of `store` when set,
// else on a Redis spool's server, else in this process.
func (h *Webhook) webhookLimiter(ctx caddy.Context, repl *caddy.Replacer, w *webhookWorker) (*proxy.WindowLimiter, func() error, error) {
	metricsSet.GetOrCreateCounter(metricLimiterFailOpen + `{limiter="webhook"}`)
	windows, release := processWindows(), func() error { return nil }
	switch rs, redisSpooled := w.spool.(redisSpool); {
	case h.Store != "":
		r, rel, err := acquireRedis(ctx, resolveRedisURL(repl, h.Store))
		if err != nil {
			return nil, nil, err
		}
		windows, release = store.NewRedisWindows(r), rel
	case redisSpooled:
		windows = store.NewRedisWindows(rs.Store())
	}
	return proxy.NewWindowLimiter(windows, "webhook", h.logger), release, nil
}

// webhookLimits parses rate_limit, rate_limit_per_ip and read_timeout
// (checked by webhookRules); zero values take the pipeline's defaults.
func (h *Webhook) webhookLimits() (all, perIP policy.RateLimit, err error) {
	if h.RateLimit != "" {
		if all, err = policy.ParseRateLimit(h.RateLimit); err != nil {
			return all, perIP, fmt.Errorf("rate_limit: %w", err)
		}
	}
	if h.RateLimitPerIP != "" {
		if perIP, err = policy.ParseRateLimit(h.RateLimitPerIP); err != nil {
			return all, perIP, fmt.Errorf("rate_limit_per_ip: %w", err)
		}
	}
	return all, perIP, nil
}

// merchantLimiter sets merchant_rate_limit in cfg: counted in the Redis
// store when the handler has one (replicas share the caps), else in this
// process (memory and file stores).
func (a *API) merchantLimiter(cfg *outbound.Config) error {
	metricsSet.GetOrCreateCounter(metricLimiterFailOpen + `{limiter="merchant"}`)
	if a.MerchantRateLimit == "" {
		return nil
	}
	rate, err := policy.ParseRateLimit(a.MerchantRateLimit)
	if err != nil {
		return fmt.Errorf("merchant_rate_limit: %w", err)
	}
	if perSecond(rate) >= perSecond(cfg.RateLimit) {
		a.logger.Warn("merchant_rate_limit is not below the account's rate_limit: it caps nothing",
			zap.String("merchant_rate_limit", rate.String()), zap.String("rate_limit", cfg.RateLimit.String()))
	}
	var windows proxy.Windows = processWindows()
	if r, ok := cfg.Budget.(*store.Redis); ok {
		windows = store.NewRedisWindows(r)
	}
	cfg.MerchantRateLimit = rate
	cfg.MerchantLimiter = proxy.NewWindowLimiter(windows, "merchant", a.logger)
	return nil
}

func perSecond(r policy.RateLimit) float64 {
	if r.Period <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Period.Seconds()
}

// maxReadTimeout bounds read_timeout: the provider gives up on its answer
// after 10 seconds, so a much longer body wait only holds connections.
const maxReadTimeout = caddy.Duration(5 * time.Minute)

// checkReadTimeout is the read_timeout rule.
func checkReadTimeout(d caddy.Duration) error {
	if d < 0 || d > maxReadTimeout {
		return errors.New("read_timeout must be a positive duration up to 5m, such as 10s")
	}
	return nil
}
