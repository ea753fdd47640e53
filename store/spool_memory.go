package store

import (
	"bytes"
	"context"
	"sort"
	"sync"
	"time"
)

// MemorySpool is a Spool in process memory. It is not durable: it exists for
// tests of the delivery machinery and as the reference the conformance suite
// is checked against. Use the file spool (OpenBolt) in a gateway.
type MemorySpool struct {
	mu      sync.Mutex
	pending map[string]*memPending
	dead    map[string]SpoolEvent
	closed  bool
}

type memPending struct {
	ev  SpoolEvent
	due time.Time // NextAttempt, or the end of a claim's lease
}

// NewMemorySpool returns an empty MemorySpool.
func NewMemorySpool() *MemorySpool {
	return &MemorySpool{pending: make(map[string]*memPending), dead: make(map[string]SpoolEvent)}
}

func cloneEvent(ev SpoolEvent) SpoolEvent {
	ev.Body = bytes.Clone(ev.Body)
	return ev
}

// Put implements Spool.
func (m *MemorySpool) Put(ctx context.Context, ev SpoolEvent) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	if _, ok := m.pending[ev.ID]; ok {
		return ErrExists
	}
	if _, ok := m.dead[ev.ID]; ok {
		return ErrExists
	}
	m.pending[ev.ID] = &memPending{ev: cloneEvent(ev), due: ev.NextAttempt}
	return nil
}

// Claim implements Spool.
func (m *MemorySpool) Claim(_ context.Context, now time.Time, lease time.Duration, max int) ([]SpoolEvent, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	var due []*memPending
	for _, p := range m.pending {
		if !p.due.After(now) {
			due = append(due, p)
		}
	}
	sort.Slice(due, func(i, j int) bool {
		if !due[i].due.Equal(due[j].due) {
			return due[i].due.Before(due[j].due)
		}
		return due[i].ev.ID < due[j].ev.ID
	})
	if len(due) > max {
		due = due[:max]
	}
	out := make([]SpoolEvent, len(due))
	for i, p := range due {
		p.due = now.Add(lease)
		out[i] = cloneEvent(p.ev)
	}
	return out, nil
}

// NextDue implements Spool.
func (m *MemorySpool) NextDue(context.Context) (time.Time, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var (
		next time.Time
		ok   bool
	)
	for _, p := range m.pending {
		if !ok || p.due.Before(next) {
			next, ok = p.due, true
		}
	}
	return next, ok, nil
}

// Complete implements Spool.
func (m *MemorySpool) Complete(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.pending[id]; !ok {
		return ErrNotFound
	}
	delete(m.pending, id)
	return nil
}

// Retry implements Spool.
func (m *MemorySpool) Retry(_ context.Context, id string, attempts int, next time.Time, lastErr string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.pending[id]
	if !ok {
		return ErrNotFound
	}
	p.ev.Attempts, p.ev.NextAttempt, p.ev.LastError = attempts, next, lastErr
	p.due = next
	return nil
}

// Bury implements Spool.
func (m *MemorySpool) Bury(_ context.Context, id string, attempts int, at time.Time, lastErr string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.pending[id]
	if !ok {
		return ErrNotFound
	}
	delete(m.pending, id)
	p.ev.Attempts, p.ev.DeadAt, p.ev.LastError = attempts, at, lastErr
	m.dead[id] = p.ev
	return nil
}

// DeadLetters implements Spool.
func (m *MemorySpool) DeadLetters(_ context.Context, max int) ([]SpoolEvent, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]SpoolEvent, 0, len(m.dead))
	for _, ev := range m.dead {
		out = append(out, cloneEvent(ev))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	if len(out) > max {
		out = out[:max]
	}
	return out, nil
}

// Replay implements Spool.
func (m *MemorySpool) Replay(_ context.Context, id string, now time.Time) (SpoolEvent, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ev, ok := m.dead[id]
	if !ok {
		return SpoolEvent{}, ErrNotFound
	}
	delete(m.dead, id)
	ev.DeadAt, ev.RetryFrom, ev.NextAttempt = time.Time{}, now, now
	m.pending[id] = &memPending{ev: ev, due: now}
	return cloneEvent(ev), nil
}

// Stats implements Spool.
func (m *MemorySpool) Stats(context.Context) (SpoolStats, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := SpoolStats{Pending: len(m.pending), DeadLetters: len(m.dead)}
	for _, p := range m.pending {
		if st.OldestPending.IsZero() || p.ev.Received.Before(st.OldestPending) {
			st.OldestPending = p.ev.Received
		}
	}
	return st, nil
}

// Close implements Spool.
func (m *MemorySpool) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	return nil
}

// Interface guard.
var _ Spool = (*MemorySpool)(nil)
