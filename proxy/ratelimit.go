package proxy

import (
	"context"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/qrphgate/qrphgate/policy"
	"github.com/qrphgate/qrphgate/store"
)

// Windows counts hits in fixed windows: *store.Windows (ulule/limiter's
// memory or Redis store).
type Windows interface {
	Hit(ctx context.Context, key string, limit int, period time.Duration) (store.WindowHit, error)
}

// WindowLimiter applies fixed-window rate limits for abuse protection (the
// webhook endpoint's limits, per-merchant caps). It fails open: when its
// store cannot be reached, every request passes, since a limiter outage
// must never block a payment's message. The outage is logged once, when it
// starts, and again when the store answers; each request let through
// unlimited is reported (Decision.FailedOpen) for the caller to count.
type WindowLimiter struct {
	windows Windows
	name    string
	log     *zap.Logger
	down    atomic.Bool
}

// Decision is the answer of WindowLimiter.Allow.
type Decision struct {
	// Allowed is false when the request is over the limit.
	Allowed bool
	// RetryAfter is, when !Allowed, when the window ends.
	RetryAfter time.Duration
	// FailedOpen is true when the store could not be reached and the
	// request was let through without counting.
	FailedOpen bool
}

// NewWindowLimiter counts in w; name says what it limits in its log lines
// ("webhook", "merchant"). A nil logger logs nothing.
func NewWindowLimiter(w Windows, name string, log *zap.Logger) *WindowLimiter {
	if log == nil {
		log = zap.NewNop()
	}
	return &WindowLimiter{windows: w, name: name, log: log}
}

// Allow counts one request under key against rate. A nil limiter or a
// zero rate allows everything.
func (l *WindowLimiter) Allow(ctx context.Context, key string, rate policy.RateLimit) Decision {
	if l == nil || rate.Requests <= 0 || rate.Period <= 0 {
		return Decision{Allowed: true}
	}
	hit, err := l.windows.Hit(ctx, key, rate.Requests, rate.Period)
	if err != nil && ctx.Err() != nil {
		// The client left: that says nothing about the store.
		return Decision{Allowed: true}
	}
	if err != nil {
		if l.down.CompareAndSwap(false, true) {
			l.log.Error("rate limiter store unavailable: requests pass without a rate limit until it answers",
				zap.String("limiter", l.name), zap.Error(err))
		}
		return Decision{Allowed: true, FailedOpen: true}
	}
	if l.down.CompareAndSwap(true, false) {
		l.log.Info("rate limiter counting again: its store answers", zap.String("limiter", l.name))
	}
	return Decision{Allowed: hit.Allowed, RetryAfter: hit.RetryAfter}
}
