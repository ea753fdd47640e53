package inbound

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"time"

	"go.uber.org/zap"

	"github.com/qrphgate/qrphgate/policy"
	"github.com/qrphgate/qrphgate/proxy"
)

// The endpoint's defences: rate limits right after the IP check, a read
// deadline on the body, and a closed connection after a refusal that did
// not read the body.
//
// The default limits leave the provider's own traffic far below them. The
// production budget is 1000 calls a minute per account, each created QR
// ends in at most one event (paid or declined), and the provider attempts
// an event at most four times, 15 minutes apart: at worst 4000 webhooks a
// minute, all from one address. DefaultRateLimitPerIP is that with a
// quarter to spare, DefaultRateLimit twice it (two sender addresses at the
// worst case). A 429 loses nothing: the provider retries it.
var (
	DefaultRateLimit      = policy.RateLimit{Requests: 10000, Period: time.Minute}
	DefaultRateLimitPerIP = policy.RateLimit{Requests: 5000, Period: time.Minute}
)

// DefaultReadTimeout bounds the body's arrival: the provider's own answer
// deadline, so a sender that trickles its body cannot hold a connection
// (and a goroutine) for longer than the provider would wait for the answer.
const DefaultReadTimeout = 10 * time.Second

func (c *Config) applyDefenceDefaults() {
	if c.RateLimit.Requests <= 0 || c.RateLimit.Period <= 0 {
		c.RateLimit = DefaultRateLimit
	}
	if c.RateLimitPerIP.Requests <= 0 || c.RateLimitPerIP.Period <= 0 {
		c.RateLimitPerIP = DefaultRateLimitPerIP
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = DefaultReadTimeout
	}
}

// limit applies the per-address limit, then the endpoint's: a flood from
// one address is refused by its own limit before it can use up the
// endpoint's, so the other senders still get through. The limiter fails
// open (a store outage lets everything through, counted).
func (in *Handler) limit(ctx context.Context, log *zap.Logger, client netip.Addr) (string, error) {
	if in.cfg.Limiter == nil {
		return "", nil
	}
	// The counters name no handler: the counts are per process (memory)
	// or per Redis server, shared by every replica and every
	// modulus_webhook that counts there. Each limit has its own (the
	// limiter keys them by the limit's name).
	for _, l := range []struct {
		subject string
		rate    policy.RateLimit
		what    string
	}{
		{limitAddress(client), in.cfg.RateLimitPerIP, "rate_limit_per_ip"},
		{"", in.cfg.RateLimit, "rate_limit"},
	} {
		d := in.cfg.Limiter.Allow(ctx, l.what, l.subject, l.rate)
		if d.FailedOpen {
			in.cfg.Observer.LimiterFailedOpen()
		}
		if !d.Allowed {
			// A flood would flood the log too: the metric counts these.
			log.Debug("webhook over the rate limit", zap.String("limit", l.what))
			return ResultRateLimited, &proxy.Error{Status: http.StatusTooManyRequests, Code: ResultRateLimited,
				Message: "too many webhooks (" + l.what + "); retry later", RetryAfter: d.RetryAfter}
		}
	}
	return "", nil
}

// limitAddress is the per-address counter's name: the address, or its /64
// for IPv6 (one host's usual allocation, which it can move around in).
func limitAddress(a netip.Addr) string {
	if a.Is6() && !a.Is4In6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.Unmap().String()
}

// readBody reads the body under a read deadline of ReadTimeout, cleared
// once the body is in (so the connection's background read cannot hit it
// while the event is being stored). A sender that trickles its body gets
// os.ErrDeadlineExceeded. Where the connection has no deadlines (HTTP/3),
// the body is read without one. A connection's deadline is on the system
// clock, not the pipeline's (which tests replace).
func (in *Handler) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	rc := http.NewResponseController(w)
	deadline := rc.SetReadDeadline(time.Now().Add(in.cfg.ReadTimeout)) == nil
	body, err := proxy.ReadBody(w, r, in.cfg.MaxBody)
	if deadline {
		if cerr := rc.SetReadDeadline(time.Time{}); cerr != nil && err == nil && !errors.Is(cerr, http.ErrNotSupported) {
			in.log.Debug("could not clear the body's read deadline", zap.Error(cerr))
		}
	}
	return body, err
}

// closesConnection reports whether a result is a refusal made before the
// body was read (or while it was): the answer carries Connection: close so
// the server does not read (or wait for) the rest of an unwanted body.
func closesConnection(result string) bool {
	switch result {
	case ResultForbiddenIP, ResultRateLimited, ResultMethodNotAllowed, ResultUnsupportedMedia,
		ResultBodyTooLarge, ResultRequestTimeout:
		return true
	}
	return false
}
