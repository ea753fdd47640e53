package store_test

import (
	"testing"
	"time"

	"github.com/qrphgate/qrphgate/internal/clock"
	"github.com/qrphgate/qrphgate/store"
	"github.com/qrphgate/qrphgate/store/storetest"
)

func TestMemoryClaimTaker(t *testing.T) {
	c := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	m := store.NewMemory(c)
	storetest.ClaimTaker(t, m.WithBudget("rate:sandbox:acct_1"), m, storetest.Harness{Unit: time.Minute, Advance: c.Advance})
}

// On a Cluster the claim and the window are one script: it would fail
// with CROSSSLOT were the two keys not in one slot.
func TestRedisClaimTaker(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b redisBackend) {
		r := openBackend(t, b, store.RedisOptions{})
		storetest.ClaimTaker(t, r.WithBudget("rate:sandbox:acct_1"), r, realHarness)
	})
}

// Two clients stand for two replicas: a key one claimed with its slot is
// in flight for the other, and its answer, written later, replays there.
func TestRedisClaimTakerAcrossReplicas(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b redisBackend) {
		prefix := testPrefix()
		a := openBackend(t, b, store.RedisOptions{Prefix: prefix}).WithBudget("rate:sandbox:acct_2")
		r2 := openBackend(t, b, store.RedisOptions{Prefix: prefix})
		o := r2.WithBudget("rate:sandbox:acct_2")
		ctx := t.Context()
		c, g, err := a.BeginTake(ctx, "idem:x", "fp", time.Minute, 1, time.Minute)
		if err != nil || c.State != store.Claimed || !g.OK {
			t.Fatalf("%+v %+v %v", c, g, err)
		}
		if c, g, err = o.BeginTake(ctx, "idem:x", "fp", time.Minute, 1, time.Minute); err != nil || c.State != store.InFlight || g.OK {
			t.Fatalf("the other replica: %+v %+v %v", c, g, err)
		}
		// The other replica's next call finds the one slot taken.
		if c, g, err = o.BeginTake(ctx, "idem:y", "fp", time.Minute, 1, time.Minute); err != nil || c.State != store.Claimed || g.OK {
			t.Fatalf("the shared window: %+v %+v %v", c, g, err)
		}
		done := make(chan error, 1)
		a.(store.LaterCompleter).CompleteLater("idem:x", "fp", []byte("qr"), time.Minute, func(err error) { done <- err })
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if c, err := o.Get(ctx, "idem:x"); err != nil || c.State != store.Completed || string(c.Value) != "qr" {
			t.Fatalf("the answer on the other replica: %+v %v", c, err)
		}
		if n, err := r2.Usage(ctx, "rate:sandbox:acct_2", time.Minute); err != nil || n != 1 {
			t.Fatalf("usage %d %v, want 1", n, err)
		}
	})
}

// Sealed: the conformance suite, then a key change. A reference claimed
// just before the change is found under its old name: BeginTake hands
// back that record and gives back the slot it took (no call is made).
func TestRedisClaimTakerSealed(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b redisBackend) {
		at := store.NewAtRest(testSealer(t, 1))
		r := openBackend(t, b, store.RedisOptions{AtRest: at})
		storetest.ClaimTaker(t, r.WithBudget("rate:sandbox:acct_s"), r, realHarness)

		ct := r.WithBudget("rate:sandbox:acct_k")
		ctx := t.Context()
		if c, g, err := ct.BeginTake(ctx, "idem:before", "fp", time.Minute, 10, time.Minute); err != nil || c.State != store.Claimed || !g.OK {
			t.Fatalf("before the change: %+v %+v %v", c, g, err)
		}
		if err := ct.Complete(ctx, "idem:before", "fp", []byte("qr-1"), time.Minute); err != nil {
			t.Fatal(err)
		}
		at.Set(testSealer(t, 2, 1)) // a new key; the old one still opens
		c, g, err := ct.BeginTake(ctx, "idem:before", "fp", time.Minute, 10, time.Minute)
		if err != nil || c.State != store.Completed || string(c.Value) != "qr-1" || g.OK {
			t.Fatalf("after the change: %+v %+v %v", c, g, err)
		}
		if n, err := r.Usage(ctx, "rate:sandbox:acct_k", time.Minute); err != nil || n != 1 {
			t.Fatalf("usage %d %v, want 1: the slot taken with the new name was not given back", n, err)
		}
		if c, err := ct.Get(ctx, "idem:before"); err != nil || c.State != store.Completed {
			t.Fatalf("get: %+v %v", c, err)
		}
	})
}
