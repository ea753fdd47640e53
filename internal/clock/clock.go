// Package clock is the time source of qrphgate's engine. Production code
// uses Real; tests use Fake, which moves only when told to and fires timers
// in order, so nothing in a unit test sleeps for real.
package clock

import (
	"context"
	"slices"
	"sort"
	"sync"
	"time"
)

// Clock tells the time and makes timers.
type Clock interface {
	Now() time.Time
	NewTimer(d time.Duration) Timer
}

// Timer is the part of *time.Timer that callers use.
type Timer interface {
	C() <-chan time.Time
	// Stop prevents the timer from firing; it reports whether it was active.
	Stop() bool
}

// Real is the system clock.
func Real() Clock { return realClock{} }

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

type realTimer struct{ t *time.Timer }

func (r realTimer) C() <-chan time.Time { return r.t.C }
func (r realTimer) Stop() bool          { return r.t.Stop() }

// Sleep waits for d on c, or until ctx is done (returning its error).
func Sleep(ctx context.Context, c Clock, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := c.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Fake is a manual clock for tests.
type Fake struct {
	mu      sync.Mutex
	cond    *sync.Cond
	now     time.Time
	pending []*fakeTimer
}

// NewFake returns a Fake clock set to start (a fixed instant when zero).
func NewFake(start time.Time) *Fake {
	if start.IsZero() {
		start = time.Date(2026, 1, 15, 10, 30, 0, 0, time.UTC)
	}
	f := &Fake{now: start}
	f.cond = sync.NewCond(&f.mu)
	return f
}

// Now returns the fake time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// NewTimer returns a timer that fires when the clock is advanced past d.
func (f *Fake) NewTimer(d time.Duration) Timer {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := &fakeTimer{f: f, at: f.now.Add(d), c: make(chan time.Time, 1)}
	if d <= 0 {
		t.c <- f.now
		return t
	}
	f.pending = append(f.pending, t)
	f.cond.Broadcast()
	return t
}

// Advance moves the clock forward by d, firing due timers in time order.
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	target := f.now.Add(d)
	for {
		sort.SliceStable(f.pending, func(i, j int) bool { return f.pending[i].at.Before(f.pending[j].at) })
		if len(f.pending) == 0 || f.pending[0].at.After(target) {
			break
		}
		t := f.pending[0]
		f.pending = f.pending[1:]
		f.now = t.at
		select {
		case t.c <- t.at:
		default:
		}
	}
	f.now = target
	f.mu.Unlock()
}

// Timers returns how many timers are waiting to fire.
func (f *Fake) Timers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.pending)
}

// WaitForTimers blocks until at least n timers are waiting, so a test can
// advance the clock only once the code under test is asleep on it. It gives
// up after timeout (real time) and reports whether the count was reached.
func (f *Fake) WaitForTimers(n int, timeout time.Duration) bool {
	return f.waitUntil(timeout, func() bool { return len(f.pending) >= n })
}

// WaitForTimerAt blocks until a timer waits to fire exactly at at: the
// code under test is asleep until then, so advancing the clock to at wakes
// it (and cannot race its going to sleep). It gives up after timeout (real
// time) and reports whether such a timer came.
func (f *Fake) WaitForTimerAt(at time.Time, timeout time.Duration) bool {
	return f.waitUntil(timeout, func() bool {
		return slices.ContainsFunc(f.pending, func(t *fakeTimer) bool { return t.at.Equal(at) })
	})
}

// waitUntil blocks until cond (called with f.mu held) holds after a timer
// is made, or timeout (real time) passes; it reports whether cond held.
func (f *Fake) waitUntil(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	stop := time.AfterFunc(timeout, func() {
		f.mu.Lock()
		f.cond.Broadcast()
		f.mu.Unlock()
	})
	defer stop.Stop()
	f.mu.Lock()
	defer f.mu.Unlock()
	for !cond() {
		if !time.Now().Before(deadline) {
			return false
		}
		f.cond.Wait()
	}
	return true
}

type fakeTimer struct {
	f  *Fake
	at time.Time
	c  chan time.Time
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }

func (t *fakeTimer) Stop() bool {
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	for i, p := range t.f.pending {
		if p == t {
			t.f.pending = append(t.f.pending[:i], t.f.pending[i+1:]...)
			return true
		}
	}
	return false
}
