package inbound

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qrphgate/qrphgate/policy"
	"github.com/qrphgate/qrphgate/proxy"
	"github.com/qrphgate/qrphgate/store"
)

// failedOpenLog counts the webhooks let through by a failing limiter.
type failedOpenLog struct {
	receivedLog
	n *atomic.Int64
}

func (l failedOpenLog) LimiterFailedOpen() { l.n.Add(1) }

func limited(perIP, all int) func(*Config) {
	return func(c *Config) {
		c.Limiter = proxy.NewWindowLimiter(store.NewMemoryWindows(), "webhook", c.Logger)
		c.RateLimitPerIP = policy.RateLimit{Requests: perIP, Period: time.Hour}
		c.RateLimit = policy.RateLimit{Requests: all, Period: time.Hour}
	}
}

func (f *inboundFixture) sendNew(t *testing.T, ip string, n *int) answer {
	t.Helper()
	*n++
	tok := seal(t, testWebhookKey, payloadJSON("QRPH_SUCCESS", fmt.Sprintf("FLOOD-%d", *n)))
	return f.send(webhookRequest(envelope("data", tok)), ip)
}

// A flood from one address gets 429 rate_limited (with Retry-After, and
// the connection closed) once over rate_limit_per_ip, while another
// address still gets through: the per-address limit refuses the flood
// before it can use up the endpoint's limit, which then caps the total.
func TestRateLimitPerAddressThenEndpoint(t *testing.T) {
	f := newInboundFixture(t, limited(3, 5))
	seq := 0
	for i := 0; i < 3; i++ {
		if a := f.sendNew(t, allowedIP, &seq); a.status != 200 {
			t.Fatalf("webhook %d: %+v", i+1, a)
		}
	}
	for i := 0; i < 20; i++ {
		a := f.sendNew(t, allowedIP, &seq)
		if a.status != http.StatusTooManyRequests || a.code != ResultRateLimited {
			t.Fatalf("flood webhook %d: %+v", i+1, a)
		}
		if a.header.Get("Retry-After") == "" || a.header.Get("Connection") != "close" {
			t.Fatalf("429 headers %v", a.header)
		}
	}
	if f.lastResult() != ResultRateLimited {
		t.Fatalf("result %q", f.lastResult())
	}
	other := "203.0.113.11"
	for i := 0; i < 2; i++ {
		if a := f.sendNew(t, other, &seq); a.status != 200 {
			t.Fatalf("another address during the flood: %+v", a)
		}
	}
	// 3 + 2 = 5: the endpoint's limit is reached now, for everyone.
	if a := f.sendNew(t, "203.0.113.12", &seq); a.status != http.StatusTooManyRequests {
		t.Fatalf("over rate_limit: %+v", a)
	}
	if got := f.pending(t); got != 5 {
		t.Fatalf("%d events spooled, want 5", got)
	}
}

// The limits apply after the IP check: refused senders use up nothing.
func TestRateLimitAfterTheIPCheck(t *testing.T) {
	f := newInboundFixture(t, limited(2, 2))
	seq := 0
	for i := 0; i < 10; i++ {
		if a := f.sendNew(t, "198.51.100.7", &seq); a.status != http.StatusForbidden {
			t.Fatalf("foreign address: %+v", a)
		}
	}
	for i := 0; i < 2; i++ {
		if a := f.sendNew(t, allowedIP, &seq); a.status != 200 {
			t.Fatalf("allowed address after refused ones: %+v", a)
		}
	}
}

// IPv6 senders are counted per /64.
func TestRateLimitIPv6Prefix(t *testing.T) {
	f := newInboundFixture(t, limited(1, 100))
	seq := 0
	if a := f.sendNew(t, "2001:db8:1:2::1", &seq); a.status != 200 {
		t.Fatalf("first: %+v", a)
	}
	if a := f.sendNew(t, "2001:db8:1:2::ffff", &seq); a.status != http.StatusTooManyRequests {
		t.Fatalf("same /64: %+v", a)
	}
	if a := f.sendNew(t, "2001:db8:1:3::1", &seq); a.status != 200 {
		t.Fatalf("another /64: %+v", a)
	}
	if got := limitAddress(netip.MustParseAddr("::ffff:203.0.113.10")); got != allowedIP {
		t.Fatalf("IPv4-mapped address counted as %q", got)
	}
}

type downWindows struct{}

func (downWindows) Hit(context.Context, string, int, time.Duration) (store.WindowHit, error) {
	return store.WindowHit{}, errors.Join(store.ErrUnavailable, errors.New("connection refused"))
}

// A limiter store outage never blocks a webhook: each is accepted and
// counted as failed open.
func TestRateLimitFailsOpen(t *testing.T) {
	f := newInboundFixture(t, func(c *Config) {
		c.Limiter = proxy.NewWindowLimiter(downWindows{}, "webhook", c.Logger)
		c.RateLimitPerIP = policy.RateLimit{Requests: 1, Period: time.Hour}
	})
	var n atomic.Int64
	f.in.cfg.Observer = failedOpenLog{receivedLog: receivedLog{f: f}, n: &n}
	seq := 0
	for i := 0; i < 3; i++ {
		if a := f.sendNew(t, allowedIP, &seq); a.status != 200 {
			t.Fatalf("webhook %d during a limiter outage: %+v", i+1, a)
		}
	}
	// Each webhook tries both limits: 2 failed-open counts per webhook.
	if n.Load() != 6 {
		t.Fatalf("failed open %d times, want 6", n.Load())
	}
	if got := f.logs.FilterMessageSnippet("rate limiter store unavailable").Len(); got != 1 {
		t.Fatalf("outage logged %d times", got)
	}
}

// Refusals made before the body is read close the connection; answers
// after reading it keep it.
func TestEarlyRefusalsCloseTheConnection(t *testing.T) {
	f := newInboundFixture(t, nil)
	good := envelope("data", seal(t, testWebhookKey, payloadJSON("QRPH_SUCCESS", "C-1")))
	for _, tc := range []struct {
		name  string
		req   func() *http.Request
		ip    string
		close bool
	}{
		{"403", func() *http.Request { return webhookRequest(good) }, "198.51.100.7", true},
		{"405", func() *http.Request { return httptest.NewRequest(http.MethodGet, "/", nil) }, allowedIP, true},
		{"415", func() *http.Request {
			r := webhookRequest(good)
			r.Header.Set("Content-Type", "text/plain")
			return r
		}, allowedIP, true},
		{"413", func() *http.Request { return webhookRequest(`{"data":"` + strings.Repeat("a", 5000) + `"}`) }, allowedIP, true},
		{"400", func() *http.Request { return webhookRequest(`{"nope":1}`) }, allowedIP, false},
		{"200", func() *http.Request { return webhookRequest(good) }, allowedIP, false},
	} {
		a := f.send(tc.req(), tc.ip)
		if got := a.header.Get("Connection") == "close"; got != tc.close {
			t.Errorf("%s (%d %s): Connection: close is %v, want %v", tc.name, a.status, a.code, got, tc.close)
		}
	}
}

// A body trickled one byte at a time is cut off at read_timeout with 408
// request_timeout, long before it would have arrived, over a real
// connection (the deadline is the connection's).
func TestTrickledBodyGets408(t *testing.T) {
	f := newInboundFixture(t, func(c *Config) { c.ReadTimeout = 300 * time.Millisecond })
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.in.ServeWebhook(w, r, netip.MustParseAddr(allowedIP))
	}))
	defer srv.Close()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const size = 200 // at one byte per 50ms: 10 s to send
	fmt.Fprintf(conn, "POST /webhooks/modulus HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", size)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for i := 0; i < size; i++ {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			if _, err := conn.Write([]byte("{")); err != nil {
				return
			}
		}
	}()
	start := time.Now()
	_ = conn.SetReadDeadline(start.Add(8 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer while trickling: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout || !resp.Close { // ReadResponse moves Connection: close to Close
		t.Fatalf("status %d, headers %v", resp.StatusCode, resp.Header)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("cut off after %v; read_timeout is 300ms", d)
	}
	if f.lastResult() != ResultRequestTimeout {
		t.Fatalf("result %q", f.lastResult())
	}
}
