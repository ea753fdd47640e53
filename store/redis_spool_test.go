package store_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qrphgate/qrphgate/internal/clock"
	"github.com/qrphgate/qrphgate/store"
	"github.com/qrphgate/qrphgate/store/storetest"
)

var spoolSeq atomic.Int64

// openTestRedisSpool opens a spool under a name no other test uses.
func openTestRedisSpool(t *testing.T, r *store.Redis, name string, hb time.Duration) *store.RedisSpool {
	t.Helper()
	if name == "" {
		name = fmt.Sprintf("spool%d", spoolSeq.Add(1))
	}
	s, err := store.NewRedisSpool(context.Background(), r, store.RedisSpoolOptions{Name: name, Heartbeat: hb})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestRedisSpool(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b redisBackend) {
		r := openBackend(t, b, store.RedisOptions{})
		storetest.Spool(t, storetest.SpoolHarness{
			Open: func(t *testing.T) store.Spool { return openTestRedisSpool(t, r, "", 0) },
			Reopen: func(t *testing.T, s store.Spool) store.Spool {
				name := s.(*store.RedisSpool).Name()
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
				return openTestRedisSpool(t, r, name, 0)
			},
		})
	})
}

func TestRedisSpoolDedupe(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b redisBackend) {
		storetest.Dedupe(t, openTestRedisSpool(t, openBackend(t, b, store.RedisOptions{}), "", 0), realHarness)
	})
}

// The reservation suite: Redis keeps a reservation after its holder dies,
// until it lapses; the file spool loses it with the process.
func TestRedisSpoolReservations(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b redisBackend) {
		r := openBackend(t, b, store.RedisOptions{Reservation: time.Second})
		storetest.Reservations(t, storetest.ReservationHarness{
			Harness: realHarness, Clock: clock.Real(), Reservation: time.Second,
			Open: func(t *testing.T) storetest.SpoolDedupe { return openTestRedisSpool(t, r, "", 0) },
			Crash: func(t *testing.T, s storetest.SpoolDedupe) storetest.SpoolDedupe {
				rs := s.(*store.RedisSpool)
				store.CrashRedisSpool(rs)
				return openTestRedisSpool(t, r, rs.Name(), 0)
			},
		})
	})
}

func TestBoltReservations(t *testing.T) {
	clk := clock.NewFake(time.Time{})
	storetest.Reservations(t, storetest.ReservationHarness{
		Harness: storetest.Harness{Unit: time.Minute, Advance: clk.Advance}, Clock: clk,
		Open: func(t *testing.T) storetest.SpoolDedupe {
			s := openBolt(t, filepath.Join(t.TempDir(), "spool.db"), clk)
			t.Cleanup(func() { _ = s.Close() })
			return s
		},
		Crash: func(t *testing.T, s storetest.SpoolDedupe) storetest.SpoolDedupe {
			b := s.(*store.BoltSpool)
			_ = b.Close() // what survives is what is in the file
			b = openBolt(t, b.Path(), clk)
			t.Cleanup(func() { _ = b.Close() })
			return b
		},
	})
}

// A file spool per replica, de-duplication shared through Redis: the
// "other process" of the crash test is another replica with its own file.
func TestSharedDedupeReservations(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b redisBackend) {
		r := openBackend(t, b, store.RedisOptions{Reservation: time.Second})
		replica := func(t *testing.T) storetest.SpoolDedupe {
			b := openBolt(t, filepath.Join(t.TempDir(), "spool.db"), nil)
			t.Cleanup(func() { _ = b.Close() })
			return store.NewSharedDedupe(b, r, nil)
		}
		storetest.Reservations(t, storetest.ReservationHarness{
			Harness: realHarness, Clock: clock.Real(), Reservation: time.Second,
			Open:  replica,
			Crash: func(t *testing.T, _ storetest.SpoolDedupe) storetest.SpoolDedupe { return replica(t) },
		})
	})
}

// Two replicas on one Redis spool: every event is claimed by exactly one of
// them, however they race.
func TestRedisSpoolReplicasClaimEachEventOnce(t *testing.T) {
	forEachBackend(t, testRedisSpoolReplicasClaimEachEventOnce)
}

func testRedisSpoolReplicasClaimEachEventOnce(t *testing.T, bk redisBackend) {
	ctx := context.Background()
	r := openBackend(t, bk, store.RedisOptions{})
	a := openTestRedisSpool(t, r, "shared", 0)
	b := openTestRedisSpool(t, r, "shared", 0)
	now := time.Now()
	const n = 200
	for i := 0; i < n; i++ {
		ev := store.SpoolEvent{ID: fmt.Sprintf("e%03d", i), Body: []byte("{}"), Received: now, RetryFrom: now, NextAttempt: now}
		if err := []*store.RedisSpool{a, b}[i%2].Put(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	for _, s := range []*store.RedisSpool{a, b, a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				evs, err := s.Claim(ctx, now, time.Hour, 7)
				if err != nil {
					t.Error(err)
					return
				}
				if len(evs) == 0 {
					return
				}
				mu.Lock()
				for _, ev := range evs {
					seen[ev.ID]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(seen) != n {
		t.Fatalf("%d distinct events claimed, want %d", len(seen), n)
	}
	for id, c := range seen {
		if c != 1 {
			t.Fatalf("%s claimed %d times", id, c)
		}
	}
}

// A replica that dies holding claims: the survivors' heartbeat hands its
// events back long before the lease it asked for ends. A replica that
// closes cleanly hands its claims back at once.
func TestRedisSpoolTakesOverFromASilentReplica(t *testing.T) {
	forEachBackend(t, testRedisSpoolTakesOverFromASilentReplica)
}

func testRedisSpoolTakesOverFromASilentReplica(t *testing.T, bk redisBackend) {
	ctx := context.Background()
	r := openBackend(t, bk, store.RedisOptions{})
	const hb = 600 * time.Millisecond
	a := openTestRedisSpool(t, r, "takeover", hb)
	b := openTestRedisSpool(t, r, "takeover", hb)
	now := time.Now()
	for _, id := range []string{"x1", "x2", "x3"} {
		ev := store.SpoolEvent{ID: id, Action: "QRPH_SUCCESS", Body: []byte(`{"id":"` + id + `"}`), Received: now, RetryFrom: now, NextAttempt: now}
		if err := a.Put(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	if evs, _ := a.Claim(ctx, now, time.Hour, 10); len(evs) != 3 {
		t.Fatalf("a claimed %d", len(evs))
	}
	if evs, _ := b.Claim(ctx, time.Now(), time.Hour, 10); len(evs) != 0 {
		t.Fatalf("b claimed %d events a holds", len(evs))
	}
	store.CrashRedisSpool(a)
	var got []store.SpoolEvent
	deadline := time.Now().Add(10 * hb)
	for len(got) < 3 && time.Now().Before(deadline) {
		evs, err := b.Claim(ctx, time.Now(), time.Hour, 10)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, evs...)
		time.Sleep(hb / 10)
	}
	if len(got) != 3 {
		t.Fatalf("b took over %d of a's 3 events within %v", len(got), 10*hb)
	}
	for _, ev := range got {
		if string(ev.Body) != `{"id":"`+ev.ID+`"}` {
			t.Fatalf("taken-over event %s has body %q", ev.ID, ev.Body)
		}
	}

	// A clean close: c's claim is free the moment it closes.
	c := openTestRedisSpool(t, r, "takeover", hb)
	ev := store.SpoolEvent{ID: "y1", Body: []byte("{}"), Received: now, RetryFrom: now, NextAttempt: now}
	_ = c.Put(ctx, ev)
	if evs, _ := c.Claim(ctx, time.Now(), time.Hour, 10); len(evs) != 1 {
		t.Fatal("c did not claim y1")
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if evs, _ := b.Claim(ctx, time.Now(), time.Hour, 10); len(evs) != 1 || evs[0].ID != "y1" {
		t.Fatalf("after c closed, b claimed %v", evs)
	}
}
