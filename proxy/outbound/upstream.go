package outbound

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/qrphgate/qrphgate/internal/clock"
	"github.com/qrphgate/qrphgate/proxy"
	"github.com/qrphgate/qrphgate/store"
)

// maxUpstreamBody caps what is read of an upstream answer: a create-QR
// token is a few kilobytes, the JWE layer refuses more than 256 KiB.
const maxUpstreamBody = 1 << 20

// userAgent identifies the gateway to the provider.
const userAgent = "qrphgate"

// upstreamCall is one logical call to the provider, attempted up to
// 1+Retries times.
type upstreamCall struct {
	endpoint string // metrics and log label: create_qr, ping, webhooks_list...
	up       *upstream
	method   string
	path     string
	url      string // up.base + path, when the caller has it made already
	body     []byte
	auth     bool
	header   http.Header // extra request headers
	// slot is the first attempt's rate slot when it was taken already
	// (with the idempotency claim); nil: the pacer takes it.
	slot *store.Grant
}

// upstreamResponse is the provider's answer to the attempt that got one.
type upstreamResponse struct {
	status   int
	header   http.Header
	body     []byte
	sentAt   time.Time // when the answering attempt was sent
	attempts int
	// tooLarge: the answer's body exceeded maxUpstreamBody and was dropped
	// (body is nil). The provider did answer: that is an unusable answer
	// (upstream_bad_response), not an unreachable provider.
	tooLarge bool
}

// call sends c to the provider: credentials fuse, breaker, rate slot,
// attempt, and retries only where the request provably did not reach the
// provider (the connection failed before the request was written) or the
// provider refused it with 429. Waiting (rate slots, Retry-After, backoff)
// ends at deadline. The attempts themselves are detached from ctx: once a
// request is on its way, a client that leaves does not abort it, so its
// outcome can still be recorded (for idempotent replay).
func (o *Handler) call(ctx context.Context, c upstreamCall, deadline time.Time) (*upstreamResponse, *proxy.Error) {
	for attempt := 0; ; attempt++ {
		if ra, ok := c.up.breaker.Peek(); !ok {
			return nil, breakerOpen(c.up.name, ra)
		}
		release := noRelease
		if c.auth {
			var ferr *proxy.Error
			if release, ferr = o.fuse.Admit(ctx, o.clock, deadline); ferr != nil {
				return nil, ferr
			}
		}
		var waited time.Duration
		var err error
		if c.slot != nil {
			waited, err = o.cfg.Shared.Pacer.WaitAfter(ctx, *c.slot, o.cfg.RateLimit, o.cfg.MaxQueue, deadline)
			c.slot = nil // a retry takes a slot of its own
		} else {
			waited, err = o.cfg.Shared.Pacer.Wait(ctx, o.cfg.RateLimit, o.cfg.MaxQueue, deadline)
		}
		if err != nil {
			release()
			return nil, o.waitError(err)
		}
		o.obs.QueueWait(waited)
		done, ra, ok := c.up.breaker.Allow()
		if !ok {
			release()
			return nil, breakerOpen(c.up.name, ra)
		}
		res, wrote, err := o.attempt(ctx, c)
		res.attempts = attempt + 1
		// Record the answer before letting the next wary call through.
		if err == nil && c.auth && o.fuse.Record(res.status) {
			o.obs.CredentialsRejected()
			o.log.Error("the provider rejected the credentials repeatedly; authenticated calls are stopped until reload",
				zap.Int("consecutive_rejections", int(o.fuse.threshold)), zap.Int("upstream_status", res.status))
		}
		release()
		if err != nil {
			timeout := errors.Is(err, context.DeadlineExceeded)
			done(Failure)
			outcome := "error"
			if timeout {
				outcome = "timeout"
			}
			o.obs.UpstreamCall(c.endpoint, outcome, o.clock.Now().Sub(res.sentAt))
			if !wrote && attempt < o.cfg.Retries {
				delay := o.cfg.Backoff.Delay(attempt)
				if !o.clock.Now().Add(delay).After(deadline) {
					o.obs.UpstreamRetry(c.endpoint, "connect")
					o.log.Warn("upstream connection failed before the request was sent; retrying",
						zap.String("endpoint", c.endpoint), zap.Int("attempt", attempt+1), zap.Duration("backoff", delay),
						proxy.LogString("cause", o.scrub.Scrub(err.Error())))
					if err := clock.Sleep(ctx, o.clock, delay); err != nil {
						return nil, clientClosed(err)
					}
					continue
				}
			}
			if timeout {
				return nil, &proxy.Error{Status: http.StatusGatewayTimeout, Code: CodeUpstreamTimeout,
					Message: fmt.Sprintf("the provider did not answer within %s", o.cfg.Timeout), Err: err}
			}
			return nil, &proxy.Error{Status: http.StatusBadGateway, Code: CodeUpstreamUnavailable,
				Message: "the provider could not be reached", Err: err}
		}
		o.obs.UpstreamCall(c.endpoint, strconv.Itoa(res.status), o.clock.Now().Sub(res.sentAt))
		switch s := res.status; {
		case s >= 500:
			done(Failure)
			return nil, upstreamStatusError(s, res.body, 0, o.scrub.Scrub)
		case s == http.StatusTooManyRequests:
			done(Success) // it answered: it is alive
			now := o.clock.Now()
			wait, ok := proxy.ParseRetryAfter(res.header.Get("Retry-After"), now)
			if !ok {
				wait = o.cfg.Backoff.Delay(attempt)
			}
			if attempt < o.cfg.Retries && !now.Add(wait).After(deadline) {
				o.obs.UpstreamRetry(c.endpoint, "429")
				o.log.Info("provider rate limit; retrying after its Retry-After",
					zap.String("endpoint", c.endpoint), zap.Int("attempt", attempt+1), zap.Duration("wait", wait))
				if err := clock.Sleep(ctx, o.clock, wait); err != nil {
					return nil, clientClosed(err)
				}
				continue
			}
			return nil, upstreamStatusError(s, res.body, max(wait, time.Second), o.scrub.Scrub)
		case s >= 400:
			done(Success)
			return nil, upstreamStatusError(s, res.body, 0, o.scrub.Scrub)
		case s >= 300 || s < 200:
			done(Success)
			return nil, &proxy.Error{Status: http.StatusBadGateway, Code: CodeUpstreamBadResponse,
				Message: fmt.Sprintf("the provider answered with unexpected status %d", s)}
		case res.tooLarge:
			done(Success) // it answered: it is alive
			return nil, &proxy.Error{Status: http.StatusBadGateway, Code: CodeUpstreamBadResponse,
				Message: fmt.Sprintf("the provider's answer is larger than %d bytes", maxUpstreamBody)}
		default:
			done(Success)
			return res, nil
		}
	}
}

// attempt sends one request. wrote reports whether the request may have
// reached the provider: false only when the connection failed before the
// whole request was handed to it.
func (o *Handler) attempt(ctx context.Context, c upstreamCall) (res *upstreamResponse, wrote bool, err error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.cfg.Timeout)
	defer cancel()
	var written atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteRequest: func(httptrace.WroteRequestInfo) { written.Store(true) },
	})
	var body io.Reader
	if c.body != nil {
		body = bytes.NewReader(c.body)
	}
	u := c.url
	if u == "" {
		u = c.up.base + c.path
	}
	req, err := http.NewRequestWithContext(ctx, c.method, u, body)
	if err != nil {
		return &upstreamResponse{sentAt: o.clock.Now()}, false, err
	}
	// One array for the values, each slice capped at its own element.
	h, vals := req.Header, [...]string{userAgent, "application/json", "application/json", o.basic}
	all := vals[:]
	h["User-Agent"] = all[0:1:1]
	h["Accept"] = all[1:2:2]
	if c.body != nil {
		h["Content-Type"] = all[2:3:3]
	}
	if c.auth {
		h["Authorization"] = all[3:4:4]
	}
	for k, v := range c.header {
		h[k] = v
	}
	res = &upstreamResponse{sentAt: o.clock.Now()}
	resp, err := o.cfg.Shared.Transport.RoundTrip(req)
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", context.DeadlineExceeded, err)
		}
		return res, written.Load(), err
	}
	defer resp.Body.Close()
	b, err := proxy.ReadAllSized(io.LimitReader(resp.Body, maxUpstreamBody+1), resp.ContentLength, maxUpstreamBody)
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (reading the answer: %v)", context.DeadlineExceeded, err)
		}
		return res, true, err
	}
	res.status, res.header = resp.StatusCode, resp.Header
	if len(b) > maxUpstreamBody {
		res.tooLarge = true // an error status keeps its meaning, without its body
		return res, true, nil
	}
	res.body = b
	return res, true, nil
}

func breakerOpen(name string, retryAfter time.Duration) *proxy.Error {
	return &proxy.Error{Status: http.StatusServiceUnavailable, Code: CodeBreakerOpen,
		Message:    "the circuit breaker for the provider's " + name + " API is open after repeated failures",
		RetryAfter: max(retryAfter, time.Millisecond)}
}

func clientClosed(err error) *proxy.Error {
	return &proxy.Error{Status: statusClientClosed, Code: CodeClientClosed, Message: "the client left", Err: err}
}

// waitError maps a pacer failure: *Error as is, a cancelled context as the
// client leaving.
func (o *Handler) waitError(err error) *proxy.Error {
	var e *proxy.Error
	if errors.As(err, &e) {
		return e
	}
	return clientClosed(err)
}
