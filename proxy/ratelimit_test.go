package proxy

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/qrphgate/qrphgate/internal/testenv"
	"github.com/qrphgate/qrphgate/policy"
	"github.com/qrphgate/qrphgate/store"
)

// breakable counts in a real memory store, or fails like an unreachable
// Redis while broken.
type breakable struct {
	mu     sync.Mutex
	broken bool
	w      *store.Windows
}

func (b *breakable) set(broken bool) {
	b.mu.Lock()
	b.broken = broken
	b.mu.Unlock()
}

func (b *breakable) Hit(ctx context.Context, key string, limit int, period time.Duration) (store.WindowHit, error) {
	b.mu.Lock()
	broken := b.broken
	b.mu.Unlock()
	if broken {
		return store.WindowHit{}, errors.Join(store.ErrUnavailable, errors.New("dial tcp: connection refused"))
	}
	return b.w.Hit(ctx, key, limit, period)
}

// Over the limit a request is refused with the window's Retry-After; a
// store outage lets every request through, reported as failed open, and is
// logged once when it starts and once when it ends.
func TestWindowLimiterFailsOpenAndLogsOnce(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	b := &breakable{w: store.NewMemoryWindows()}
	l := NewWindowLimiter(b, "webhook", zap.New(core))
	rate := policy.RateLimit{Requests: 2, Period: time.Hour}
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		if d := l.Allow(ctx, "limit", "k", rate); !d.Allowed || d.FailedOpen {
			t.Fatalf("request %d: %+v", i+1, d)
		}
	}
	if d := l.Allow(ctx, "limit", "k", rate); d.Allowed || d.RetryAfter < 59*time.Minute {
		t.Fatalf("third request of 2/1h: %+v", d)
	}

	b.set(true)
	for i := 0; i < 5; i++ {
		if d := l.Allow(ctx, "limit", "k", rate); !d.Allowed || !d.FailedOpen {
			t.Fatalf("during the outage: %+v, want allowed and failed open", d)
		}
	}
	if n := logs.FilterMessageSnippet("rate limiter store unavailable").Len(); n != 1 {
		t.Fatalf("the outage was logged %d times, want once", n)
	}
	b.set(false)
	if d := l.Allow(ctx, "limit", "k", rate); d.Allowed || d.FailedOpen {
		t.Fatalf("after the outage the count applies again: %+v", d)
	}
	if n := logs.FilterMessageSnippet("rate limiter counting again").Len(); n != 1 {
		t.Fatalf("the recovery was logged %d times, want once", n)
	}
}

// A request whose client left is let through without reporting an outage.
func TestWindowLimiterClientGone(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	b := &breakable{w: store.NewMemoryWindows()}
	b.set(true)
	l := NewWindowLimiter(b, "webhook", zap.New(core))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if d := l.Allow(ctx, "limit", "k", policy.RateLimit{Requests: 1, Period: time.Hour}); !d.Allowed || d.FailedOpen {
		t.Fatalf("cancelled request: %+v", d)
	}
	if logs.Len() != 0 {
		t.Fatalf("logged %d lines for a client that left", logs.Len())
	}
}

// A nil limiter and a zero rate limit nothing.
func TestWindowLimiterOff(t *testing.T) {
	var l *WindowLimiter
	if d := l.Allow(context.Background(), "limit", "k", policy.RateLimit{Requests: 1, Period: time.Second}); !d.Allowed {
		t.Fatal("a nil limiter must allow")
	}
	l = NewWindowLimiter(store.NewMemoryWindows(), "x", nil)
	for i := 0; i < 3; i++ {
		if d := l.Allow(context.Background(), "limit", "k", policy.RateLimit{}); !d.Allowed {
			t.Fatal("a zero rate must allow")
		}
	}
}

// stuckWindows never answers a count until its context ends, like a Redis
// server that accepted the connection and then went silent.
type stuckWindows struct{}

func (stuckWindows) Hit(ctx context.Context, _ string, _ int, _ time.Duration) (store.WindowHit, error) {
	<-ctx.Done()
	return store.WindowHit{}, errors.Join(store.ErrUnavailable, ctx.Err())
}

// A store that does not answer holds no request past the limiter's
// timeout: each passes, failed open (for the caller to count), and the
// outage is logged once.
func TestWindowLimiterTimesOut(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	l := NewWindowLimiter(stuckWindows{}, "webhook", zap.New(core))
	for i := 0; i < 3; i++ {
		done := make(chan Decision, 1)
		go func() {
			done <- l.Allow(context.Background(), "rate_limit", "", policy.RateLimit{Requests: 1, Period: time.Hour})
		}()
		select {
		case d := <-done:
			if !d.Allowed || !d.FailedOpen {
				t.Fatalf("request %d: %+v, want allowed and failed open", i+1, d)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("a request waits for a store that does not answer")
		}
	}
	if n := logs.FilterMessageSnippet("rate limiter store unavailable").Len(); n != 1 {
		t.Fatalf("the outage was logged %d times, want once", n)
	}
}

// Each limit counts on its own, in memory and on Redis: the endpoint's
// limit, the per-address limit and a merchant cap never share a counter,
// even for one subject, and a limit whose window changes starts afresh
// (its old counter has its old window's expiry).
func TestWindowLimiterKeysAreDistinct(t *testing.T) {
	ctx := context.Background()
	prefix := fmt.Sprintf("qrphgate-limitkeys-%d:", time.Now().UnixNano())
	r, err := store.OpenRedis(ctx, "redis://127.0.0.1:6379/0", store.RedisOptions{Prefix: prefix})
	if err != nil {
		testenv.Missing(t, "redis on 127.0.0.1:6379: %v", err)
	}
	raw := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	t.Cleanup(func() {
		keys, _ := raw.Keys(ctx, prefix+"*").Result()
		if len(keys) > 0 {
			raw.Del(ctx, keys...)
		}
		_ = raw.Close()
		_ = r.Close()
	})
	for _, tc := range []struct {
		name    string
		windows Windows
	}{{"memory", store.NewMemoryWindows()}, {"redis", store.NewRedisWindows(r)}} {
		t.Run(tc.name, func(t *testing.T) {
			subject := tc.name + "-203.0.113.7"
			webhook, merchant := NewWindowLimiter(tc.windows, "webhook", nil), NewWindowLimiter(tc.windows, "merchant", nil)
			hour := policy.RateLimit{Requests: 1, Period: time.Hour}
			for _, c := range []struct {
				l     *WindowLimiter
				limit string
			}{{webhook, "rate_limit_per_ip"}, {webhook, "rate_limit"}, {merchant, "merchant_rate_limit"}, {webhook, "merchant_rate_limit"}} {
				if d := c.l.Allow(ctx, c.limit, subject, hour); !d.Allowed || d.FailedOpen {
					t.Fatalf("%s %s: the first request is refused (%+v): it shares another limit's counter", c.l.name, c.limit, d)
				}
				if d := c.l.Allow(ctx, c.limit, subject, hour); d.Allowed {
					t.Fatalf("%s %s: the second request of 1/1h passes", c.l.name, c.limit)
				}
			}
			// The same limit, its window changed from an hour to a minute.
			if d := webhook.Allow(ctx, "rate_limit_per_ip", subject, policy.RateLimit{Requests: 1, Period: time.Minute}); !d.Allowed {
				t.Fatalf("a new window of the limit counts on the old one's counter: %+v", d)
			}
		})
	}
	keys, err := raw.Keys(ctx, prefix+"limit:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(keys)
	want := []string{
		prefix + "limit:merchant:merchant_rate_limit:1h0m0s:redis-203.0.113.7",
		prefix + "limit:webhook:merchant_rate_limit:1h0m0s:redis-203.0.113.7",
		prefix + "limit:webhook:rate_limit:1h0m0s:redis-203.0.113.7",
		prefix + "limit:webhook:rate_limit_per_ip:1h0m0s:redis-203.0.113.7",
		prefix + "limit:webhook:rate_limit_per_ip:1m0s:redis-203.0.113.7",
	}
	if fmt.Sprint(keys) != fmt.Sprint(want) {
		t.Fatalf("keys on Redis:\n%s\nwant\n%s", strings.Join(keys, "\n"), strings.Join(want, "\n"))
	}
}
