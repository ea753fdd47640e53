package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/qrphgate/qrphgate/internal/clock"
	"github.com/qrphgate/qrphgate/internal/redistest"
	"github.com/qrphgate/qrphgate/internal/testenv"
	"github.com/qrphgate/qrphgate/store"
)

// checkWindows: a window admits its limit and refuses the next hit with a
// Retry-After up to the period; keys count separately.
func checkWindows(t *testing.T, w *store.Windows, key string) {
	t.Helper()
	ctx := context.Background()
	for i := 1; i <= 3; i++ {
		hit, err := w.Hit(ctx, key, 3, time.Hour)
		if err != nil || !hit.Allowed || hit.Remaining != 3-i {
			t.Fatalf("hit %d: %+v, %v", i, hit, err)
		}
	}
	hit, err := w.Hit(ctx, key, 3, time.Hour)
	if err != nil || hit.Allowed {
		t.Fatalf("hit 4 of a 3/1h window: %+v, %v", hit, err)
	}
	if hit.RetryAfter < time.Hour-time.Minute || hit.RetryAfter > time.Hour+time.Second {
		t.Fatalf("retry after %v, want about an hour", hit.RetryAfter)
	}
	if hit, err := w.Hit(ctx, key+"-other", 3, time.Hour); err != nil || !hit.Allowed {
		t.Fatalf("another key shares the count: %+v, %v", hit, err)
	}
}

func TestMemoryWindows(t *testing.T) {
	checkWindows(t, store.NewMemoryWindows(), "k")
	if _, err := store.NewMemoryWindows().Hit(context.Background(), "k", 0, time.Second); err == nil {
		t.Fatal("a zero limit must be an error")
	}
}

// Two processes' Windows on one server share the counts (replicas), and
// concurrent hits never admit more than the limit.
func TestRedisWindowsShared(t *testing.T) {
	prefix := fmt.Sprintf("qrphgate-test:%d:", time.Now().UnixNano())
	open := func() *store.Redis {
		r, err := store.OpenRedis(context.Background(), testRedisURL, store.RedisOptions{Prefix: prefix})
		if err != nil {
			testenv.Missing(t, "redis on 127.0.0.1:6379: %v", err)
		}
		t.Cleanup(func() { _ = r.Close() })
		return r
	}
	a, b := open(), open()
	t.Cleanup(func() { redistest.DropKeys(t, prefix) })
	checkWindows(t, store.NewRedisWindows(a), "k")
	if hit, err := store.NewRedisWindows(b).Hit(context.Background(), "k", 3, time.Hour); err != nil || hit.Allowed {
		t.Fatalf("a second connection to the server does not see the first one's count: %+v, %v", hit, err)
	}

	key := "race"
	w1, w2 := store.NewRedisWindows(a), store.NewRedisWindows(b)
	var wg sync.WaitGroup
	var mu sync.Mutex
	admitted := 0
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func(w *store.Windows) {
			defer wg.Done()
			hit, err := w.Hit(context.Background(), key, 25, time.Hour)
			if err != nil {
				t.Error(err)
				return
			}
			if hit.Allowed {
				mu.Lock()
				admitted++
				mu.Unlock()
			}
		}([]*store.Windows{w1, w2}[i%2])
	}
	wg.Wait()
	if admitted != 25 {
		t.Fatalf("admitted %d of 40 concurrent hits under a limit of 25", admitted)
	}
}

// While the server is down every hit fails with ErrUnavailable (never
// hangs), and the same Windows counts again once it is back, including a
// Windows made while the server was down (the scripts load late).
func TestRedisWindowsOutage(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	r, err := store.OpenRedis(context.Background(), srv.URL(), store.RedisOptions{
		AllowDown: true, PingEvery: 50 * time.Millisecond,
		DialTimeout: 200 * time.Millisecond, ReadTimeout: 200 * time.Millisecond, WriteTimeout: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	w := store.NewRedisWindows(r)
	ctx := context.Background()
	if hit, err := w.Hit(ctx, "k", 5, time.Hour); err != nil || !hit.Allowed {
		t.Fatalf("before the outage: %+v, %v", hit, err)
	}
	srv.Stop()
	late := store.NewRedisWindows(r) // made while the server is down
	for _, win := range []*store.Windows{w, late} {
		start := time.Now()
		if _, err := win.Hit(ctx, "k", 5, time.Hour); !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("during the outage: %v, want ErrUnavailable", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("a hit during the outage took %v", d)
		}
	}
	srv.Restart()
	waitUntil(t, "the store to see the server again", func() bool { return r.State().Up })
	for _, win := range []*store.Windows{w, late} {
		var hit store.WindowHit
		waitUntil(t, "a hit to succeed after the outage", func() bool {
			hit, err = win.Hit(ctx, "k", 5, time.Hour)
			return err == nil
		})
		if !hit.Allowed {
			t.Fatalf("after the outage: %+v", hit)
		}
	}
}

// While the server is down, hits try it at most once a second on the
// store's clock and fail at once in between (ErrServerDown), so a burst of
// webhooks does not wait for a dial each; a second later on that clock
// they try again, and count again once it answers.
func TestRedisWindowsRetryPacing(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	clk := clock.NewFake(time.Time{})
	r, err := store.OpenRedis(context.Background(), srv.URL(), store.RedisOptions{
		AllowDown: true, Clock: clk,
		DialTimeout: 200 * time.Millisecond, ReadTimeout: 200 * time.Millisecond, WriteTimeout: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	w := store.NewRedisWindows(r)
	ctx := context.Background()
	if hit, err := w.Hit(ctx, "k", 5, time.Hour); err != nil || !hit.Allowed {
		t.Fatalf("before the outage: %+v, %v", hit, err)
	}
	srv.Stop()
	// The first hit finds the server gone (and marks it down).
	if _, err := w.Hit(ctx, "k", 5, time.Hour); !errors.Is(err, store.ErrUnavailable) || errors.Is(err, store.ErrServerDown) {
		t.Fatalf("first hit of the outage: %v, want a failed try", err)
	}
	for i := 0; i < 5; i++ {
		if _, err := w.Hit(ctx, "k", 5, time.Hour); !errors.Is(err, store.ErrServerDown) {
			t.Fatalf("hit %d within the second: %v, want ErrServerDown without a try", i, err)
		}
	}
	clk.Advance(999 * time.Millisecond)
	if _, err := w.Hit(ctx, "k", 5, time.Hour); !errors.Is(err, store.ErrServerDown) {
		t.Fatalf("hit just under a second later: %v, want ErrServerDown", err)
	}
	clk.Advance(time.Millisecond)
	if _, err := w.Hit(ctx, "k", 5, time.Hour); !errors.Is(err, store.ErrUnavailable) || errors.Is(err, store.ErrServerDown) {
		t.Fatalf("hit a second later: %v, want a failed try", err)
	}
	srv.Restart()
	if _, err := w.Hit(ctx, "k", 5, time.Hour); !errors.Is(err, store.ErrServerDown) {
		t.Fatalf("hit before the next try: %v, want ErrServerDown", err)
	}
	clk.Advance(time.Second)
	if hit, err := w.Hit(ctx, "k", 5, time.Hour); err != nil || !hit.Allowed {
		t.Fatalf("hit after the server came back: %+v, %v", hit, err)
	}
	if !r.State().Up {
		t.Fatal("the store still reports the server down")
	}
}
