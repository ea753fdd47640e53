package storetest

import (
	"bytes"
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qrphgate/qrphgate/store"
)

// ClaimTaker runs the conformance tests of an idempotency cache bound to a
// rate budget (store.ClaimTaker): the Idempotency suite, and BeginTake,
// which takes a slot of budget (the store the cache was bound in) only for
// a claim that is the caller's. A LaterCompleter's answers are checked too.
func ClaimTaker(t *testing.T, s store.ClaimTaker, budget store.RateBudget, h Harness) {
	ctx := context.Background()
	lease, ttl, w := 2*h.Unit, 4*h.Unit, 8*h.Unit

	t.Run("idempotency", func(t *testing.T) { Idempotency(t, s, h) })

	t.Run("a claim takes a slot, a replay none", func(t *testing.T) {
		usage := func() int {
			n, err := budget.Usage(ctx, s.BudgetKey(), w)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		base := usage()
		k1, k2, k3 := key(t), key(t), key(t)
		c, g, err := s.BeginTake(ctx, k1, "fp1", lease, base+2, w)
		if err != nil || c.State != store.Claimed || !g.OK || g.Used != base+1 {
			t.Fatalf("first: %+v %+v %v", c, g, err)
		}
		c, g, err = s.BeginTake(ctx, k1, "fp1", lease, base+2, w)
		if err != nil || c.State != store.InFlight || c.Fingerprint != "fp1" || g != (store.Grant{}) {
			t.Fatalf("a duplicate in flight: %+v %+v %v", c, g, err)
		}
		if n := usage(); n != base+1 {
			t.Fatalf("usage %d after a duplicate, want %d: it took a slot", n, base+1)
		}
		if c, g, err = s.BeginTake(ctx, k2, "fp2", lease, base+2, w); err != nil || c.State != store.Claimed || !g.OK {
			t.Fatalf("second key: %+v %+v %v", c, g, err)
		}
		// The budget is full: the claim stands, the slot is refused with
		// the time until one frees up.
		c, g, err = s.BeginTake(ctx, k3, "fp3", lease, base+2, w)
		if err != nil || c.State != store.Claimed || g.OK || g.RetryAfter <= 0 || g.RetryAfter > w {
			t.Fatalf("over the limit: %+v %+v %v", c, g, err)
		}
		if n := usage(); n != base+2 {
			t.Fatalf("usage %d after a refused slot, want %d", n, base+2)
		}
		if c, _ := s.Get(ctx, k3); c.State != store.InFlight {
			t.Fatalf("the claim of a call waiting for a slot: %+v", c)
		}

		complete(t, s, k1, "fp1", []byte(`{"id":"1"}`), ttl)
		for _, fp := range []string{"fp1", "other"} {
			c, g, err = s.BeginTake(ctx, k1, fp, lease, base+10, w)
			if err != nil || c.State != store.Completed || c.Fingerprint != "fp1" || !bytes.Equal(c.Value, []byte(`{"id":"1"}`)) || g != (store.Grant{}) {
				t.Fatalf("a replay (%s): %+v %+v %v", fp, c, g, err)
			}
		}
		if n := usage(); n != base+2 {
			t.Fatalf("usage %d after replays, want %d", n, base+2)
		}
	})

	t.Run("concurrent claims take one slot", func(t *testing.T) {
		k := key(t)
		var claimed, granted atomic.Int64
		var wg sync.WaitGroup
		for i := 0; i < 50; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, g, err := s.BeginTake(ctx, k, "fp", lease, 1<<20, w)
				if err == nil && c.State == store.Claimed {
					claimed.Add(1)
				}
				if g.OK {
					granted.Add(1)
				}
			}()
		}
		wg.Wait()
		if claimed.Load() != 1 || granted.Load() != 1 {
			t.Fatalf("%d callers claimed the key and %d got a slot, want 1 and 1", claimed.Load(), granted.Load())
		}
	})

	if lc, ok := s.(store.LaterCompleter); ok {
		t.Run("answers written later, first answer wins", func(t *testing.T) {
			keys := make([]string, 100)
			var wg sync.WaitGroup
			errs := make(chan error, 2*len(keys))
			for i := range keys {
				keys[i] = key(t)
				if c, _, err := s.BeginTake(ctx, keys[i], "fp", lease, 1<<20, w); err != nil || c.State != store.Claimed {
					t.Fatalf("claim %d: %+v %v", i, c, err)
				}
				wg.Add(2)
				lc.CompleteLater(keys[i], "fp", []byte("answer"), ttl, func(err error) { errs <- err; wg.Done() })
				// Not the owner: never written over the owner's answer.
				lc.CompleteLater(keys[i], "intruder", []byte("wrong"), ttl, func(err error) { errs <- err; wg.Done() })
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			for _, k := range keys {
				if c, err := s.Get(ctx, k); err != nil || c.State != store.Completed || c.Fingerprint != "fp" || string(c.Value) != "answer" {
					t.Fatalf("%s: %+v %v", k, c, err)
				}
			}
		})
	}
}

// complete stores an answer, through CompleteLater when s has it.
func complete(t *testing.T, s store.ClaimTaker, key, fp string, value []byte, ttl time.Duration) {
	t.Helper()
	if lc, ok := s.(store.LaterCompleter); ok {
		done := make(chan error, 1)
		lc.CompleteLater(key, fp, value, ttl, func(err error) { done <- err })
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		return
	}
	if err := s.Complete(context.Background(), key, fp, value, ttl); err != nil {
		t.Fatal(err)
	}
}
