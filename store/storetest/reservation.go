package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/qrphgate/qrphgate/internal/clock"
	"github.com/qrphgate/qrphgate/store"
)

// SpoolDedupe is a back end that is both the spool and the de-duplication
// set (the file spool, the Redis spool, SharedDedupe).
type SpoolDedupe interface {
	store.Spool
	store.Dedupe
}

// ReservationHarness adapts the reservation suite to a back end.
type ReservationHarness struct {
	Harness
	// Clock is the back end's time source (DedupeUntil is computed from
	// it).
	Clock clock.Clock
	// Reservation is how long an unconfirmed reservation outlives a crash
	// of its holder: the Redis store's Reservation option; 0 for a back end
	// whose reservations die with the process (the file spool).
	Reservation time.Duration
	// Open returns a fresh, empty back end; it is closed when the test ends.
	Open func(t *testing.T) SpoolDedupe
	// Crash abandons s as a crash would (no clean close) and returns
	// another process on the same shared storage: a restart of the file
	// spool, another replica for Redis.
	Crash func(t *testing.T, s SpoolDedupe) SpoolDedupe
}

// Reservations runs the tests of the de-duplication ordering that keeps
// every acknowledged webhook deliverable: Add only reserves a key, the
// reservation answers ErrPending (never "duplicate") to everyone else, and
// only a durable Put of the event makes the key seen, for its whole window.
// A holder that dies between Add and Put leaves no "seen" mark behind.
func Reservations(t *testing.T, h ReservationHarness) {
	ctx := context.Background()
	window := 6 * h.Unit
	put := func(t *testing.T, s store.Spool, id, key string) {
		t.Helper()
		now := h.Clock.Now()
		ev := sampleEvent(id)
		ev.Received, ev.RetryFrom, ev.NextAttempt = now, now, now
		ev.DedupeKey, ev.DedupeUntil = key, now.Add(window)
		if err := s.Put(ctx, ev); err != nil {
			t.Fatalf("put %s: %v", id, err)
		}
	}
	add := func(t *testing.T, d store.Dedupe, k string) (bool, error) {
		t.Helper()
		added, err := d.Add(ctx, k, window)
		if err != nil && !errors.Is(err, store.ErrPending) {
			t.Fatalf("add %s: %v", k, err)
		}
		return added, err
	}

	t.Run("a reservation is pending for others, not a duplicate", func(t *testing.T) {
		s := h.Open(t)
		k := key(t)
		if added, err := add(t, s, k); !added || err != nil {
			t.Fatalf("first add: %v %v", added, err)
		}
		if added, err := add(t, s, k); added || !errors.Is(err, store.ErrPending) {
			t.Fatalf("add during the reservation: %v %v, want ErrPending", added, err)
		}
	})

	t.Run("put confirms the key for the whole window", func(t *testing.T) {
		s := h.Open(t)
		k := key(t)
		add(t, s, k)
		put(t, s, "r1", k)
		if added, err := add(t, s, k); added || err != nil {
			t.Fatalf("add after the put: %v %v, want a duplicate", added, err)
		}
		if h.Reservation > 0 {
			h.Advance(h.Reservation + h.Unit)
		}
		if added, err := add(t, s, k); added || err != nil {
			t.Fatalf("a confirmed key lapsed with the reservation: %v %v", added, err)
		}
		if in, _ := s.Contains(ctx, k); !in {
			t.Fatal("Contains false for a confirmed key")
		}
	})

	t.Run("a holder that dies before its put leaves no seen mark", func(t *testing.T) {
		s := h.Open(t)
		stored, lost := key(t), key(t)
		add(t, s, stored)
		put(t, s, "c1", stored)
		add(t, s, lost) // the process dies before spooling this one
		other := h.Crash(t, s)
		if added, err := add(t, other, stored); added || err != nil {
			t.Fatalf("the stored event is not a duplicate for the next process: %v %v", added, err)
		}
		added, err := add(t, other, lost)
		if !added && err == nil {
			t.Fatal("a reservation without its event became a duplicate: the provider's retry would be acknowledged and lost")
		}
		if !added {
			// Still reserved (Redis): the retry is told to come back, and
			// after the reservation lapses it is accepted.
			h.Advance(h.Reservation + h.Unit)
			if added, err = add(t, other, lost); !added || err != nil {
				t.Fatalf("after the reservation lapsed: %v %v, want the key free", added, err)
			}
		}
		put(t, other, "c2", lost)
		if added, _ := add(t, other, lost); added {
			t.Fatal("the retried event is not a duplicate once stored")
		}
	})

	t.Run("remove frees a reservation whose put failed", func(t *testing.T) {
		s := h.Open(t)
		k := key(t)
		add(t, s, k)
		if err := s.Remove(ctx, k); err != nil {
			t.Fatal(err)
		}
		if added, err := add(t, s, k); !added || err != nil {
			t.Fatalf("add after remove: %v %v", added, err)
		}
	})

	t.Run("the window ends", func(t *testing.T) {
		s := h.Open(t)
		k := key(t)
		add(t, s, k)
		put(t, s, "w1", k)
		h.Advance(window + h.Unit)
		if added, err := add(t, s, k); !added || err != nil {
			t.Fatalf("add after the window: %v %v", added, err)
		}
	})
}
