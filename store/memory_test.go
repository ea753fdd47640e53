package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/qrphgate/qrphgate/internal/clock"
	"github.com/qrphgate/qrphgate/store"
	"github.com/qrphgate/qrphgate/store/storetest"
)

func memoryHarness() (*store.Memory, storetest.Harness) {
	clk := clock.NewFake(time.Time{})
	return store.NewMemory(clk), storetest.Harness{Unit: time.Minute, Advance: clk.Advance}
}

func TestMemoryRateBudget(t *testing.T) {
	m, h := memoryHarness()
	storetest.RateBudget(t, m, h)
}

func TestMemoryIdempotency(t *testing.T) {
	m, h := memoryHarness()
	storetest.Idempotency(t, m, h)
}

func TestMemoryDedupe(t *testing.T) {
	m, h := memoryHarness()
	storetest.Dedupe(t, m, h)
}

// The sliding-window guarantee, as a property over many random-ish arrival
// patterns: no 60 s window ever holds more admitted calls than the limit.
func TestMemorySlidingWindowProperty(t *testing.T) {
	clk := clock.NewFake(time.Time{})
	m := store.NewMemory(clk)
	const limit, window = 100, time.Minute
	var admitted []time.Time
	seed := uint64(1)
	for i := 0; i < 20000; i++ {
		seed = seed*6364136223846793005 + 1442695040888963407
		clk.Advance(time.Duration(seed>>40%1500) * time.Millisecond) // bursts and gaps, 0-1.5 s
		if g, _ := m.Take(context.Background(), "acct", limit, window); g.OK {
			admitted = append(admitted, clk.Now())
		}
	}
	lo := 0
	for hi := range admitted {
		for !admitted[lo].After(admitted[hi].Add(-window)) {
			lo++
		}
		if n := hi - lo + 1; n > limit {
			t.Fatalf("%d calls in the 60 s window ending %v", n, admitted[hi])
		}
	}
	if len(admitted) < 1000 {
		t.Fatalf("only %d admitted: the budget is not being used", len(admitted))
	}
}

func TestMemorySweepBoundsGrowth(t *testing.T) {
	clk := clock.NewFake(time.Time{})
	m := store.NewMemory(clk)
	ctx := context.Background()
	for i := 0; i < 1000; i++ {
		_, _ = m.Add(ctx, "k"+string(rune(i)), time.Second)
	}
	clk.Advance(2 * time.Minute)
	_, _ = m.Add(ctx, "fresh", time.Second)
	if in, _ := m.Contains(ctx, "k"+string(rune(5))); in {
		t.Fatal("expired key still present")
	}
	if n := store.MemoryLen(m); n != 1 {
		t.Fatalf("%d dedupe entries after the sweep, want 1", n)
	}
}
