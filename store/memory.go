package store

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/qrphgate/qrphgate/internal/clock"
)

// Memory implements RateBudget, Idempotency and Dedupe in process memory.
// It is the default for a single sidecar. Expired entries are dropped when
// touched and by a sweep at most once per sweepEvery.
//
// The file store (OpenFile) is a Memory with a journal: every change to a
// budget or a claim is also written to disk, in order, and the call returns
// once it is durable.
type Memory struct {
	now     func() time.Time
	journal journal // nil: memory only

	mu        sync.Mutex
	budgets   map[string][]time.Time // admitted call times, oldest first
	claims    map[string]memClaim
	dedupe    map[string]time.Time // key -> expiry
	lastSweep time.Time
}

// journal records a Memory's budget and claim changes durably. Its methods
// are called under Memory.mu, in the order of the changes, and only queue
// the write; the caller waits on the returned channel after unlocking.
type journal interface {
	putBudget(key string, log []time.Time) <-chan error
	deleteBudget(key string) <-chan error
	putClaim(key string, c memClaim) <-chan error
	deleteClaim(key string) <-chan error
}

// durable waits for a journal write (none without a journal).
func durable(done <-chan error, op string) error {
	if done == nil {
		return nil
	}
	if err := <-done; err != nil {
		return fmt.Errorf("%w: file store %s: %v", ErrUnavailable, op, err)
	}
	return nil
}

type memClaim struct {
	Claim
	expires time.Time
}

const sweepEvery = time.Minute

// NewMemory returns an empty Memory store on clock c (clock.Real() when
// nil; tests pass a fake clock).
func NewMemory(c clock.Clock) *Memory {
	if c == nil {
		c = clock.Real()
	}
	return &Memory{
		now:     c.Now,
		budgets: make(map[string][]time.Time),
		claims:  make(map[string]memClaim),
		dedupe:  make(map[string]time.Time),
	}
}

// Take implements RateBudget with an exact sliding log. With a journal the
// admission is durable before Take returns, so a restart cannot forget a
// call that was made.
func (m *Memory) Take(_ context.Context, key string, limit int, window time.Duration) (Grant, error) {
	m.mu.Lock()
	now := m.now()
	log := trimLog(m.budgets[key], now.Add(-window))
	if len(log) >= limit {
		m.budgets[key] = log
		m.mu.Unlock()
		return Grant{Used: len(log), RetryAfter: log[len(log)-limit].Add(window).Sub(now)}, nil
	}
	log = append(log, now)
	m.budgets[key] = log
	var done <-chan error
	if m.journal != nil {
		done = m.journal.putBudget(key, log)
	}
	m.mu.Unlock()
	// On a failed write the slot stays taken in memory: over-counting is
	// the safe side of a rate limit.
	if err := durable(done, "take"); err != nil {
		return Grant{}, err
	}
	return Grant{OK: true, Used: len(log)}, nil
}

// Usage implements RateBudget.
func (m *Memory) Usage(_ context.Context, key string, window time.Duration) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	log := trimLog(m.budgets[key], m.now().Add(-window))
	m.budgets[key] = log
	return len(log), nil
}

// trimLog drops entries at or before cutoff: a call at exactly now-window
// has left the window (now-window, now]. It reslices instead of copying, so
// a busy log costs O(1) per call; append copies only the live part when it
// next grows the array.
func trimLog(log []time.Time, cutoff time.Time) []time.Time {
	i := 0
	for i < len(log) && !log[i].After(cutoff) {
		i++
	}
	return log[i:]
}

// Begin implements Idempotency. With a journal the in-flight marker is
// durable before Begin returns, so a crash during the upstream call still
// blocks the key until the lease ends.
func (m *Memory) Begin(_ context.Context, key, fingerprint string, lease time.Duration) (Claim, error) {
	m.mu.Lock()
	now := m.now()
	m.sweepLocked(now)
	if c, ok := m.claims[key]; ok && now.Before(c.expires) {
		m.mu.Unlock()
		if c.State == Claimed {
			c.State = InFlight // it is someone else's claim now
		}
		return c.Claim, nil
	}
	mine := memClaim{Claim: Claim{State: Claimed, Fingerprint: fingerprint}, expires: now.Add(lease)}
	m.claims[key] = mine
	var done <-chan error
	if m.journal != nil {
		done = m.journal.putClaim(key, mine)
	}
	m.mu.Unlock()
	if err := durable(done, "begin"); err != nil {
		// No call is made on an error: give the key back.
		m.mu.Lock()
		if c, ok := m.claims[key]; ok && c.State == Claimed && c.Fingerprint == fingerprint && c.expires.Equal(mine.expires) {
			delete(m.claims, key)
		}
		m.mu.Unlock()
		return Claim{}, err
	}
	return Claim{State: Claimed, Fingerprint: fingerprint}, nil
}

// Complete implements Idempotency.
func (m *Memory) Complete(_ context.Context, key, fingerprint string, value []byte, ttl time.Duration) error {
	m.mu.Lock()
	now := m.now()
	c, ok := m.claims[key]
	if ok && c.State == Completed && now.Before(c.expires) {
		m.mu.Unlock()
		return nil // first answer wins
	}
	if ok && c.Fingerprint != fingerprint && now.Before(c.expires) {
		m.mu.Unlock()
		return nil // someone else's key now; never overwrite it
	}
	done := memClaim{
		Claim:   Claim{State: Completed, Fingerprint: fingerprint, Value: bytes.Clone(value)},
		expires: now.Add(ttl),
	}
	m.claims[key] = done
	var wait <-chan error
	if m.journal != nil {
		wait = m.journal.putClaim(key, done)
	}
	m.mu.Unlock()
	return durable(wait, "complete")
}

// Release implements Idempotency.
func (m *Memory) Release(_ context.Context, key, fingerprint string) error {
	m.mu.Lock()
	var wait <-chan error
	if c, ok := m.claims[key]; ok && c.State == Claimed && c.Fingerprint == fingerprint {
		delete(m.claims, key)
		if m.journal != nil {
			wait = m.journal.deleteClaim(key)
		}
	}
	m.mu.Unlock()
	return durable(wait, "release")
}

// Get implements Idempotency.
func (m *Memory) Get(_ context.Context, key string) (Claim, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.claims[key]
	if !ok || !m.now().Before(c.expires) {
		return Claim{}, nil
	}
	if c.State == Claimed {
		c.State = InFlight
	}
	c.Value = bytes.Clone(c.Value)
	return c.Claim, nil
}

// Add implements Dedupe.
func (m *Memory) Add(_ context.Context, key string, ttl time.Duration) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	m.sweepLocked(now)
	if exp, ok := m.dedupe[key]; ok && now.Before(exp) {
		return false, nil
	}
	m.dedupe[key] = now.Add(ttl)
	return true, nil
}

// Contains implements Dedupe.
func (m *Memory) Contains(_ context.Context, key string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	exp, ok := m.dedupe[key]
	return ok && m.now().Before(exp), nil
}

// Remove implements Dedupe.
func (m *Memory) Remove(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.dedupe, key)
	return nil
}

// sweepLocked drops expired claims, dedupe keys and empty budgets, at most
// once per sweepEvery, so memory stays bounded by what is live.
func (m *Memory) sweepLocked(now time.Time) {
	if now.Sub(m.lastSweep) < sweepEvery {
		return
	}
	m.lastSweep = now
	// The journal's deletes are not waited for: an expired entry that
	// survives a crash is dropped again when the file is loaded.
	for k, c := range m.claims {
		if !now.Before(c.expires) {
			delete(m.claims, k)
			if m.journal != nil {
				m.journal.deleteClaim(k)
			}
		}
	}
	for k, exp := range m.dedupe {
		if !now.Before(exp) {
			delete(m.dedupe, k)
		}
	}
	for k, log := range m.budgets {
		if len(log) == 0 {
			delete(m.budgets, k)
			if m.journal != nil {
				m.journal.deleteBudget(k)
			}
		}
	}
}

// Interface guards.
var (
	_ RateBudget  = (*Memory)(nil)
	_ Idempotency = (*Memory)(nil)
	_ Dedupe      = (*Memory)(nil)
)
