package proxy

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

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
		if d := l.Allow(ctx, "k", rate); !d.Allowed || d.FailedOpen {
			t.Fatalf("request %d: %+v", i+1, d)
		}
	}
	if d := l.Allow(ctx, "k", rate); d.Allowed || d.RetryAfter < 59*time.Minute {
		t.Fatalf("third request of 2/1h: %+v", d)
	}

	b.set(true)
	for i := 0; i < 5; i++ {
		if d := l.Allow(ctx, "k", rate); !d.Allowed || !d.FailedOpen {
			t.Fatalf("during the outage: %+v, want allowed and failed open", d)
		}
	}
	if n := logs.FilterMessageSnippet("rate limiter store unavailable").Len(); n != 1 {
		t.Fatalf("the outage was logged %d times, want once", n)
	}
	b.set(false)
	if d := l.Allow(ctx, "k", rate); d.Allowed || d.FailedOpen {
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
	if d := l.Allow(ctx, "k", policy.RateLimit{Requests: 1, Period: time.Hour}); !d.Allowed || d.FailedOpen {
		t.Fatalf("cancelled request: %+v", d)
	}
	if logs.Len() != 0 {
		t.Fatalf("logged %d lines for a client that left", logs.Len())
	}
}

// A nil limiter and a zero rate limit nothing.
func TestWindowLimiterOff(t *testing.T) {
	var l *WindowLimiter
	if d := l.Allow(context.Background(), "k", policy.RateLimit{Requests: 1, Period: time.Second}); !d.Allowed {
		t.Fatal("a nil limiter must allow")
	}
	l = NewWindowLimiter(store.NewMemoryWindows(), "x", nil)
	for i := 0; i < 3; i++ {
		if d := l.Allow(context.Background(), "k", policy.RateLimit{}); !d.Allowed {
			t.Fatal("a zero rate must allow")
		}
	}
}
