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
// store cannot be reached, or does not answer within the limiter's timeout,
// every request passes, since a limiter outage must never block (or slow
// down) a payment's message. The outage is logged once, when it starts,
// and again when the store answers; each request let through unlimited is
// reported (Decision.FailedOpen) for the caller to count.
//
// Every counter's key is made here, from the limiter's name, the limit's,
// the window's length and the subject (windowKey): two limits never share a
// counter, whatever their subjects, nor does one limit across a change of
// its window.
type WindowLimiter struct {
	windows Windows
	name    string
	log     *zap.Logger
	timeout time.Duration
	down    atomic.Bool
}

// DefaultLimiterTimeout bounds one count on the limiter's store: a Redis
// round trip takes well under a millisecond, and a store that takes longer
// than this is treated as unreachable for that request (it passes).
const DefaultLimiterTimeout = 200 * time.Millisecond

// Decision is the answer of WindowLimiter.Allow.
type Decision struct {
	// Allowed is false when the request is over the limit.
	Allowed bool
	// RetryAfter is, when !Allowed, when the window ends.
	RetryAfter time.Duration
	// FailedOpen is true when the store could not be reached (or did not
	// answer in time) and the request was let through without counting.
	FailedOpen bool
}

// NewWindowLimiter counts in w; name says what it limits in its log lines
// and keys ("webhook", "merchant"). A nil logger logs nothing. Each count
// waits at most DefaultLimiterTimeout.
func NewWindowLimiter(w Windows, name string, log *zap.Logger) *WindowLimiter {
	if log == nil {
		log = zap.NewNop()
	}
	return &WindowLimiter{windows: w, name: name, log: log, timeout: DefaultLimiterTimeout}
}

// windowKey names the counter of subject under the limit called limit of
// the limiter called name, for windows of period: the parts are joined
// with ":", the window written as Go writes a duration ("1m0s").
func windowKey(name, limit string, period time.Duration, subject string) string {
	return name + ":" + limit + ":" + period.String() + ":" + subject
}

// Allow counts one request of subject (an address, a merchant; "" for a
// limit on everything) against the limit called limit, at rate. A nil
// limiter or a zero rate allows everything.
func (l *WindowLimiter) Allow(ctx context.Context, limit, subject string, rate policy.RateLimit) Decision {
	if l == nil || rate.Requests <= 0 || rate.Period <= 0 {
		return Decision{Allowed: true}
	}
	cctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	hit, err := l.windows.Hit(cctx, windowKey(l.name, limit, rate.Period, subject), rate.Requests, rate.Period)
	if err != nil && ctx.Err() != nil {
		// The client left: that says nothing about the store.
		return Decision{Allowed: true}
	}
	if err != nil {
		if l.down.CompareAndSwap(false, true) {
			l.log.Error("rate limiter store unavailable: requests pass without a rate limit until it answers",
				zap.String("limiter", l.name), zap.Duration("timeout", l.timeout), zap.Error(err))
		}
		return Decision{Allowed: true, FailedOpen: true}
	}
	if l.down.CompareAndSwap(true, false) {
		l.log.Info("rate limiter counting again: its store answers", zap.String("limiter", l.name))
	}
	return Decision{Allowed: hit.Allowed, RetryAfter: hit.RetryAfter}
}
