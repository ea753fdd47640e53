package store

import (
	"math/rand/v2"
	"strconv"
	"testing"
	"time"
)

// The index's two orders stay consistent under any mix of operations: the
// oldest pending event is always what a full scan finds, and claims follow
// due times.
func TestPendingIndexMatchesAScan(t *testing.T) {
	x := newPendingIndex()
	rng := rand.New(rand.NewPCG(1, 2))
	t0 := time.Date(2026, 1, 15, 0, 0, 0, 0, time.UTC)
	now := t0
	live := map[string]time.Time{} // id -> received
	for i := 0; i < 5000; i++ {
		now = now.Add(time.Duration(rng.IntN(1000)) * time.Millisecond)
		switch op := rng.IntN(10); {
		case op < 5:
			id := "evt_" + strconv.Itoa(i)
			received := now.Add(-time.Duration(rng.IntN(3600)) * time.Second) // replays keep an old receipt
			x.add(id, now, received)
			live[id] = received
		case op < 8 && len(live) > 0:
			for id := range live {
				x.remove(id)
				delete(live, id)
				break
			}
		default:
			for _, id := range x.claim(now, time.Minute, 3) {
				if _, ok := live[id]; !ok {
					t.Fatalf("claimed %s, which is not pending", id)
				}
			}
		}
		var want time.Time
		for _, r := range live {
			if want.IsZero() || r.Before(want) {
				want = r
			}
		}
		if got := x.oldest(); !got.Equal(want) {
			t.Fatalf("step %d: oldest %v, a scan finds %v", i, got, want)
		}
		if x.heap.Len() != len(live) || x.byReceived.Len() != len(live) {
			t.Fatalf("step %d: %d/%d indexed, %d live", i, x.heap.Len(), x.byReceived.Len(), len(live))
		}
	}
}
