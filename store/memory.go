package store

import (
	"bytes"
	"context"
	"sync"
	"time"
)

// Memory implements RateBudget, Idempotency and Dedupe in process memory.
// It is the default for a single sidecar. Expired entries are dropped when
// touched and by a sweep at most once per sweepEvery.
type Memory struct {
	now func() time.Time

	mu        sync.Mutex
	budgets   map[string][]time.Time // admitted call times, oldest first
	claims    map[string]memClaim
	dedupe    map[string]time.Time // key -> expiry
	lastSweep time.Time
}

type memClaim struct {
	Claim
	expires time.Time
}

const sweepEvery = time.Minute

// NewMemory returns an empty Memory store. now may be nil (time.Now); tests
// pass a fake clock.
func NewMemory(now func() time.Time) *Memory {
	if now == nil {
		now = time.Now
	}
	return &Memory{
		now:     now,
		budgets: make(map[string][]time.Time),
		claims:  make(map[string]memClaim),
		dedupe:  make(map[string]time.Time),
	}
}

// Take implements RateBudget with an exact sliding log.
func (m *Memory) Take(_ context.Context, key string, limit int, window time.Duration) (Grant, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	log := trimLog(m.budgets[key], now.Add(-window))
	if len(log) >= limit {
		m.budgets[key] = log
		return Grant{Used: len(log), RetryAfter: log[len(log)-limit].Add(window).Sub(now)}, nil
	}
	log = append(log, now)
	m.budgets[key] = log
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

// Begin implements Idempotency.
func (m *Memory) Begin(_ context.Context, key, fingerprint string, lease time.Duration) (Claim, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	m.sweepLocked(now)
	if c, ok := m.claims[key]; ok && now.Before(c.expires) {
		if c.State == Claimed {
			c.State = InFlight // it is someone else's claim now
		}
		return c.Claim, nil
	}
	m.claims[key] = memClaim{Claim: Claim{State: Claimed, Fingerprint: fingerprint}, expires: now.Add(lease)}
	return Claim{State: Claimed, Fingerprint: fingerprint}, nil
}

// Complete implements Idempotency.
func (m *Memory) Complete(_ context.Context, key, fingerprint string, value []byte, ttl time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.claims[key]
	if ok && c.State == Completed && m.now().Before(c.expires) {
		return nil // first answer wins
	}
	if ok && c.Fingerprint != fingerprint && m.now().Before(c.expires) {
		return nil // someone else's key now; never overwrite it
	}
	m.claims[key] = memClaim{
		Claim:   Claim{State: Completed, Fingerprint: fingerprint, Value: bytes.Clone(value)},
		expires: m.now().Add(ttl),
	}
	return nil
}

// Release implements Idempotency.
func (m *Memory) Release(_ context.Context, key, fingerprint string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c, ok := m.claims[key]; ok && c.State == Claimed && c.Fingerprint == fingerprint {
		delete(m.claims, key)
	}
	return nil
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
	for k, c := range m.claims {
		if !now.Before(c.expires) {
			delete(m.claims, k)
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
		}
	}
}

// Interface guards.
var (
	_ RateBudget  = (*Memory)(nil)
	_ Idempotency = (*Memory)(nil)
	_ Dedupe      = (*Memory)(nil)
)
