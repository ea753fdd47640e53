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
