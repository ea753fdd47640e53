// Package storetest is the conformance suite every store back end passes:
// memory, file and Redis run the same tests, so the guarantees the gateway
// relies on (sliding-window budget, one call per idempotency key, one
// delivery per de-duplication key) hold whatever the operator configures.
package storetest

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qrphgate/qrphgate/store"
)

// Harness adapts the suite to a back end's clock.
type Harness struct {
	// Unit is the time scale of the tests: windows, leases and TTLs are
	// small multiples of it. A fake clock can use a minute; a real back end
	// (Redis) a second or so.
	Unit time.Duration
	// Advance moves the back end's clock forward by d: a fake clock's
	// advance, or a real sleep.
	Advance func(d time.Duration)
}

var keySeq atomic.Int64

// key returns a key no other test (or earlier run against a shared Redis) uses.
func key(t *testing.T) string {
	return fmt.Sprintf("storetest:%s:%d:%d", t.Name(), time.Now().UnixNano(), keySeq.Add(1))
}

// RateBudget runs the rate-budget conformance tests.
func RateBudget(t *testing.T, b store.RateBudget, h Harness) {
	ctx := context.Background()
	w := 4 * h.Unit

	t.Run("admits up to the limit then refuses", func(t *testing.T) {
		k := key(t)
		for i := 1; i <= 5; i++ {
			g, err := b.Take(ctx, k, 5, w)
			if err != nil || !g.OK || g.Used != i {
				t.Fatalf("take %d: %+v %v", i, g, err)
			}
		}
		g, err := b.Take(ctx, k, 5, w)
		if err != nil || g.OK {
			t.Fatalf("take 6 admitted: %+v %v", g, err)
		}
		if g.RetryAfter <= 0 || g.RetryAfter > w {
			t.Fatalf("RetryAfter %v outside (0, %v]", g.RetryAfter, w)
		}
		if n, err := b.Usage(ctx, k, w); err != nil || n != 5 {
			t.Fatalf("usage %d %v; a refused take must not be recorded", n, err)
		}
	})

	t.Run("window slides", func(t *testing.T) {
		k := key(t)
		take := func(n int, want bool) {
			t.Helper()
			for i := 0; i < n; i++ {
				g, err := b.Take(ctx, k, 5, w)
				if err != nil || g.OK != want {
					t.Fatalf("take: %+v %v, want OK=%v", g, err, want)
				}
			}
		}
		take(3, true) // t=0
		h.Advance(w / 2)
		take(2, true) // t=w/2: 5 in the window
		take(1, false)
		h.Advance(w/2 + h.Unit/2) // the first three have left; the two remain
		take(3, true)
		take(1, false)
	})

	t.Run("keys are independent", func(t *testing.T) {
		k1, k2 := key(t), key(t)
		if g, _ := b.Take(ctx, k1, 1, w); !g.OK {
			t.Fatal("k1 refused")
		}
		if g, _ := b.Take(ctx, k2, 1, w); !g.OK {
			t.Fatal("k2 refused because of k1")
		}
	})

	t.Run("concurrent takes never exceed the limit", func(t *testing.T) {
		k := key(t)
		var ok atomic.Int64
		var wg sync.WaitGroup
		for i := 0; i < 60; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if g, err := b.Take(ctx, k, 20, w); err == nil && g.OK {
					ok.Add(1)
				}
			}()
		}
		wg.Wait()
		if ok.Load() != 20 {
			t.Fatalf("%d admitted, want exactly 20", ok.Load())
		}
	})
}

// Idempotency runs the idempotency conformance tests.
func Idempotency(t *testing.T, s store.Idempotency, h Harness) {
	ctx := context.Background()
	lease, ttl := 2*h.Unit, 4*h.Unit

	t.Run("claim, complete, replay", func(t *testing.T) {
		k := key(t)
		if c, _ := s.Get(ctx, k); c.State != 0 {
			t.Fatalf("fresh key: %+v", c)
		}
		c, err := s.Begin(ctx, k, "fp1", lease)
		if err != nil || c.State != store.Claimed {
			t.Fatalf("begin: %+v %v", c, err)
		}
		c, _ = s.Begin(ctx, k, "fp1", lease)
		if c.State != store.InFlight || c.Fingerprint != "fp1" {
			t.Fatalf("second begin: %+v", c)
		}
		c, _ = s.Begin(ctx, k, "fp2", lease)
		if c.State != store.InFlight || c.Fingerprint != "fp1" {
			t.Fatalf("begin with another body must show the owner's fingerprint: %+v", c)
		}
		if err := s.Complete(ctx, k, "fp1", []byte(`{"id":"1"}`), ttl); err != nil {
			t.Fatal(err)
		}
		for _, fp := range []string{"fp1", "fp2"} {
			c, _ = s.Begin(ctx, k, fp, lease)
			if c.State != store.Completed || c.Fingerprint != "fp1" || !bytes.Equal(c.Value, []byte(`{"id":"1"}`)) {
				t.Fatalf("begin after complete (%s): %+v", fp, c)
			}
		}
		if c, _ = s.Get(ctx, k); c.State != store.Completed {
			t.Fatalf("get: %+v", c)
		}
		// Release never drops an answer.
		_ = s.Release(ctx, k, "fp1")
		if c, _ = s.Get(ctx, k); c.State != store.Completed {
			t.Fatalf("release dropped a completed answer: %+v", c)
		}
	})

	t.Run("release frees the key for its owner only", func(t *testing.T) {
		k := key(t)
		_, _ = s.Begin(ctx, k, "fp1", lease)
		_ = s.Release(ctx, k, "other")
		if c, _ := s.Get(ctx, k); c.State != store.InFlight {
			t.Fatalf("release by a non-owner took effect: %+v", c)
		}
		_ = s.Release(ctx, k, "fp1")
		if c, _ := s.Begin(ctx, k, "fp2", lease); c.State != store.Claimed {
			t.Fatalf("after release: %+v", c)
		}
	})

	t.Run("lease and ttl expire", func(t *testing.T) {
		k := key(t)
		_, _ = s.Begin(ctx, k, "crashed", lease)
		h.Advance(lease + h.Unit)
		if c, _ := s.Begin(ctx, k, "fp2", lease); c.State != store.Claimed {
			t.Fatalf("an expired lease still blocks the key: %+v", c)
		}
		_ = s.Complete(ctx, k, "fp2", []byte("v"), ttl)
		h.Advance(ttl + h.Unit)
		if c, _ := s.Get(ctx, k); c.State != 0 {
			t.Fatalf("answer outlived its ttl: %+v", c)
		}
	})

	t.Run("concurrent begins claim once", func(t *testing.T) {
		k := key(t)
		var claimed atomic.Int64
		var wg sync.WaitGroup
		for i := 0; i < 50; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if c, err := s.Begin(ctx, k, "fp", lease); err == nil && c.State == store.Claimed {
					claimed.Add(1)
				}
			}()
		}
		wg.Wait()
		if claimed.Load() != 1 {
			t.Fatalf("%d callers claimed the key, want 1", claimed.Load())
		}
	})
}

// Dedupe runs the de-duplication conformance tests.
func Dedupe(t *testing.T, s store.Dedupe, h Harness) {
	ctx := context.Background()
	ttl := 2 * h.Unit

	t.Run("add, duplicate, remove", func(t *testing.T) {
		k := key(t)
		if added, err := s.Add(ctx, k, ttl); err != nil || !added {
			t.Fatalf("first add: %v %v", added, err)
		}
		if added, _ := s.Add(ctx, k, ttl); added {
			t.Fatal("second add of the same key reported new")
		}
		if in, _ := s.Contains(ctx, k); !in {
			t.Fatal("Contains false after Add")
		}
		if err := s.Remove(ctx, k); err != nil {
			t.Fatal(err)
		}
		if added, _ := s.Add(ctx, k, ttl); !added {
			t.Fatal("add after remove reported a duplicate")
		}
	})

	t.Run("expires after ttl", func(t *testing.T) {
		k := key(t)
		_, _ = s.Add(ctx, k, ttl)
		h.Advance(ttl + h.Unit)
		if in, _ := s.Contains(ctx, k); in {
			t.Fatal("key outlived its ttl")
		}
		if added, _ := s.Add(ctx, k, ttl); !added {
			t.Fatal("add after expiry reported a duplicate")
		}
	})

	t.Run("concurrent adds report one new", func(t *testing.T) {
		k := key(t)
		var added atomic.Int64
		var wg sync.WaitGroup
		for i := 0; i < 50; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if ok, err := s.Add(ctx, k, ttl); err == nil && ok {
					added.Add(1)
				}
			}()
		}
		wg.Wait()
		if added.Load() != 1 {
			t.Fatalf("%d adds reported new, want 1", added.Load())
		}
	})
}
