package outbound

import "time"

// Observer receives the outbound gateway's measurements; the Caddy
// adapter turns them into Prometheus metrics. Every label it is given comes
// from a small fixed set (endpoint names, status codes, error codes), never
// from request data.
type Observer interface {
	// UpstreamCall records one upstream attempt: outcome is the HTTP status
	// ("200", "429", "503"...), "timeout" or "error" (no answer).
	UpstreamCall(endpoint, outcome string, d time.Duration)
	// UpstreamRetry records a retry and its reason ("connect" or "429").
	UpstreamRetry(endpoint, reason string)
	// QueueWait records how long an admitted call waited for a rate slot.
	QueueWait(d time.Duration)
	// QueueRejected records a call refused by the pacer ("queue_full" or
	// "max_wait").
	QueueRejected(reason string)
	// IdempotentReplay records an answer served from the idempotency cache.
	IdempotentReplay()
	// IdempotencyConflict records a reference reused with another body.
	IdempotencyConflict()
	// CredentialsRejected records the credentials fuse blowing.
	CredentialsRejected()
	// Response records what the app got: status and error code ("" on success).
	Response(endpoint string, status int, code string)
	// LimiterFailedOpen records a call let through without its merchant's
	// cap because the limiter's store could not be reached.
	LimiterFailedOpen()
	// BreakerChanged records a circuit breaker's transition; upstream is
	// the breaker's name ("qr" or "webhooks"). It is called outside the
	// breaker's lock.
	BreakerChanged(upstream string, from, to BreakerState)
}

// NopObserver discards everything.
type NopObserver struct{}

func (NopObserver) UpstreamCall(string, string, time.Duration)        {}
func (NopObserver) UpstreamRetry(string, string)                      {}
func (NopObserver) QueueWait(time.Duration)                           {}
func (NopObserver) QueueRejected(string)                              {}
func (NopObserver) IdempotentReplay()                                 {}
func (NopObserver) IdempotencyConflict()                              {}
func (NopObserver) CredentialsRejected()                              {}
func (NopObserver) Response(string, int, string)                      {}
func (NopObserver) LimiterFailedOpen()                                {}
func (NopObserver) BreakerChanged(string, BreakerState, BreakerState) {}

var _ Observer = NopObserver{}
