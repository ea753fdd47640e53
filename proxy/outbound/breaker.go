package outbound

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/qrphgate/qrphgate/internal/clock"
)

// BreakerSettings configure a circuit breaker (the circuit_breaker option).
type BreakerSettings struct {
	// Failures within Window open the breaker.
	Failures int

	// Window is the sliding window failures are counted in.
	Window time.Duration

	// Open is how long the breaker stays open before it admits probes.
	Open time.Duration

	// Probes is how many trial calls the half-open breaker admits; that many
	// consecutive successes close it, one failure opens it again.
	Probes int
}

// DefaultBreakerSettings are the documented defaults.
var DefaultBreakerSettings = BreakerSettings{Failures: 5, Window: 30 * time.Second, Open: 30 * time.Second, Probes: 1}

// validate is NewBreaker's guard on its input. The circuit_breaker
// option's rule, with its limits and messages, is the Caddy adapter's.
func (s BreakerSettings) validate() error {
	switch {
	case s.Failures < 1:
		return errors.New("circuit_breaker failures must be at least 1")
	case s.Window <= 0:
		return errors.New("circuit_breaker window must be positive")
	case s.Open <= 0:
		return errors.New("circuit_breaker open must be positive")
	case s.Probes < 1:
		return errors.New("circuit_breaker probes must be at least 1")
	}
	return nil
}

// String is the settings' identity, used to key shared breakers.
func (s BreakerSettings) String() string {
	return fmt.Sprintf("failures=%d window=%s open=%s probes=%d", s.Failures, s.Window, s.Open, s.Probes)
}

// BreakerState is closed, half-open or open.
type BreakerState int

// Breaker states; the numbers are the breaker-state metric's values.
const (
	BreakerClosed   BreakerState = 0
	BreakerHalfOpen BreakerState = 1
	BreakerOpen     BreakerState = 2
)

func (s BreakerState) String() string {
	switch s {
	case BreakerClosed:
		return "closed"
	case BreakerHalfOpen:
		return "half-open"
	case BreakerOpen:
		return "open"
	}
	return "unknown"
}

// Outcome is what a call admitted by a Breaker reports back.
type Outcome int

const (
	// Success: the upstream answered (any 2xx-4xx): it is alive.
	Success Outcome = iota
	// Failure: 5xx, timeout or connection error.
	Failure
	// Ignored: the call says nothing about the upstream (it was never sent).
	Ignored
)

// Breaker is a circuit breaker with an injected clock, so its transitions
// are tested without sleeping. Semantics follow sony/gobreaker's: closed
// counts failures (here: in a sliding window), open refuses everything until
// Open has passed, half-open admits Probes calls and closes after that many
// consecutive successes or opens again on a failure; outcomes of calls
// admitted before a transition are ignored.
//
// qrphgate does not use gobreaker itself: v2 reads time.Now internally
// (no clock injection), and its DistributedCircuitBreaker, whose state lives
// in a pluggable store, reads that state before taking its lock, holds the
// lock for the whole upstream call and JSON-encodes about 1 KB of state
// twice per call.
type Breaker struct {
	name  string
	s     BreakerSettings
	clock clock.Clock
	obs   Observer

	mu             sync.Mutex
	state          BreakerState
	generation     uint64
	failures       []time.Time // closed: failure times inside the window, oldest first
	openUntil      time.Time
	probesInFlight int
	probeSuccesses int
}

// NewBreaker returns a closed breaker. obs (NopObserver when nil) hears of
// every transition, after it (outside the breaker's lock), through
// BreakerChanged with the breaker's name.
func NewBreaker(name string, s BreakerSettings, c clock.Clock, obs Observer) (*Breaker, error) {
	if err := s.validate(); err != nil {
		return nil, err
	}
	if c == nil {
		c = clock.Real()
	}
	if obs == nil {
		obs = NopObserver{}
	}
	return &Breaker{name: name, s: s, clock: c, obs: obs}, nil
}

// Name is the breaker's name (the upstream it guards).
func (b *Breaker) Name() string { return b.name }

// Peek reports whether a call would be admitted now, without admitting it,
// and otherwise how long until it may be.
func (b *Breaker) Peek() (retryAfter time.Duration, ok bool) {
	b.mu.Lock()
	now := b.clock.Now()
	tr := b.advanceLocked(now)
	retryAfter, ok = b.refusalLocked(now)
	b.mu.Unlock()
	b.notify(tr)
	return retryAfter, ok
}

// Allow admits a call, returning the function that reports its outcome
// (call it exactly once), or refuses it with the time until the breaker may
// admit again.
func (b *Breaker) Allow() (done func(Outcome), retryAfter time.Duration, ok bool) {
	b.mu.Lock()
	now := b.clock.Now()
	tr := b.advanceLocked(now)
	if retryAfter, ok = b.refusalLocked(now); !ok {
		b.mu.Unlock()
		b.notify(tr)
		return nil, retryAfter, false
	}
	probe := b.state == BreakerHalfOpen
	if probe {
		b.probesInFlight++
	}
	gen := b.generation
	b.mu.Unlock()
	b.notify(tr)
	return func(o Outcome) { b.record(gen, probe, o) }, 0, true
}

// refusalLocked says whether the current state admits a call.
func (b *Breaker) refusalLocked(now time.Time) (time.Duration, bool) {
	switch b.state {
	case BreakerOpen:
		return b.openUntil.Sub(now), false
	case BreakerHalfOpen:
		if b.probesInFlight+b.probeSuccesses >= b.s.Probes {
			// The probes are out; their answer decides, usually within a
			// timeout. Tell the caller to come back shortly.
			return time.Second, false
		}
	}
	return 0, true
}

type transition struct{ from, to BreakerState }

func (b *Breaker) record(gen uint64, probe bool, o Outcome) {
	b.mu.Lock()
	if gen != b.generation {
		b.mu.Unlock() // admitted before a transition: stale
		return
	}
	if probe {
		b.probesInFlight--
	}
	now := b.clock.Now()
	var tr *transition
	switch o {
	case Success:
		if b.state == BreakerHalfOpen {
			b.probeSuccesses++
			if b.probeSuccesses >= b.s.Probes {
				tr = b.setLocked(BreakerClosed, now)
			}
		}
	case Failure:
		switch b.state {
		case BreakerClosed:
			b.failures = append(b.trimLocked(now), now)
			if len(b.failures) >= b.s.Failures {
				tr = b.setLocked(BreakerOpen, now)
			}
		case BreakerHalfOpen:
			tr = b.setLocked(BreakerOpen, now)
		}
	}
	b.mu.Unlock()
	b.notify(tr)
}

// trimLocked drops failures that left the window (at or before now-Window).
func (b *Breaker) trimLocked(now time.Time) []time.Time {
	cut := now.Add(-b.s.Window)
	i := 0
	for i < len(b.failures) && !b.failures[i].After(cut) {
		i++
	}
	return b.failures[i:]
}

func (b *Breaker) advanceLocked(now time.Time) *transition {
	if b.state == BreakerOpen && !now.Before(b.openUntil) {
		return b.setLocked(BreakerHalfOpen, now)
	}
	return nil
}

func (b *Breaker) setLocked(to BreakerState, now time.Time) *transition {
	from := b.state
	b.state = to
	b.generation++
	b.failures = nil
	b.probesInFlight, b.probeSuccesses = 0, 0
	if to == BreakerOpen {
		b.openUntil = now.Add(b.s.Open)
	}
	return &transition{from, to}
}

func (b *Breaker) notify(tr *transition) {
	if tr != nil {
		b.obs.BreakerChanged(b.name, tr.from, tr.to)
	}
}

// BreakerStatus is a breaker's state for GET /modulus/status.
type BreakerStatus struct {
	State string `json:"state"`
	// FailuresInWindow counts recent failures while closed.
	FailuresInWindow int `json:"failures_in_window"`
	// RetryAfterSeconds is, while open, the time until probes are admitted.
	RetryAfterSeconds float64 `json:"retry_after_seconds,omitempty"`
	Settings          struct {
		Failures int    `json:"failures"`
		Window   string `json:"window"`
		Open     string `json:"open"`
		Probes   int    `json:"probes"`
	} `json:"settings"`
}

// Status reports the breaker's state.
func (b *Breaker) Status() BreakerStatus {
	b.mu.Lock()
	now := b.clock.Now()
	tr := b.advanceLocked(now)
	var st BreakerStatus
	st.State = b.state.String()
	if b.state == BreakerClosed {
		b.failures = b.trimLocked(now)
		st.FailuresInWindow = len(b.failures)
	}
	if b.state == BreakerOpen {
		st.RetryAfterSeconds = b.openUntil.Sub(now).Seconds()
	}
	b.mu.Unlock()
	b.notify(tr)
	st.Settings.Failures, st.Settings.Window, st.Settings.Open, st.Settings.Probes = b.s.Failures, b.s.Window.String(), b.s.Open.String(), b.s.Probes
	return st
}

// State reports the breaker's current state.
func (b *Breaker) State() BreakerState {
	b.mu.Lock()
	tr := b.advanceLocked(b.clock.Now())
	s := b.state
	b.mu.Unlock()
	b.notify(tr)
	return s
}
