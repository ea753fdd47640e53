package storetest

import (
	"bytes"
	"context"
	"sort"
	"sync"
	"time"

	"github.com/qrphgate/qrphgate/store"
)

// MemorySpool is a Spool in process memory. It is not durable: it exists for
// tests of the delivery machinery and as the reference the conformance suite
// is checked against. Use the file spool (OpenBolt) in a gateway.
type MemorySpool struct {
	mu      sync.Mutex
	pending map[string]*memPending
	dead    map[string]store.SpoolEvent
	closed  bool
}

type memPending struct {
	ev  store.SpoolEvent
	due time.Time // NextAttempt, or the end of a claim's lease
}

// NewMemorySpool returns an empty MemorySpool.
func NewMemorySpool() *MemorySpool {
	return &MemorySpool{pending: make(map[string]*memPending), dead: make(map[string]store.SpoolEvent)}
}

func cloneEvent(ev store.SpoolEvent) store.SpoolEvent {
	ev.Body = bytes.Clone(ev.Body)
	return ev
}

// Put implements Spool.
func (m *MemorySpool) Put(ctx context.Context, ev store.SpoolEvent) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return store.ErrClosed
	}
	if _, ok := m.pending[ev.ID]; ok {
		return store.ErrExists
	}
	if _, ok := m.dead[ev.ID]; ok {
		return store.ErrExists
	}
	m.pending[ev.ID] = &memPending{ev: cloneEvent(ev), due: ev.NextAttempt}
	return nil
}

// Claim implements Spool.
func (m *MemorySpool) Claim(_ context.Context, now time.Time, lease time.Duration, max int) ([]store.SpoolEvent, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, store.ErrClosed
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
	out := make([]store.SpoolEvent, len(due))
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
		return store.ErrNotFound
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
		return store.ErrNotFound
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
		return store.ErrNotFound
	}
	delete(m.pending, id)
	p.ev.Attempts, p.ev.DeadAt, p.ev.LastError = attempts, at, lastErr
	m.dead[id] = p.ev
	return nil
}

// DeadLetters implements Spool.
func (m *MemorySpool) DeadLetters(_ context.Context, max int) ([]store.SpoolEvent, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]store.SpoolEvent, 0, len(m.dead))
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
func (m *MemorySpool) Replay(_ context.Context, id string, now time.Time) (store.SpoolEvent, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ev, ok := m.dead[id]
	if !ok {
		return store.SpoolEvent{}, store.ErrNotFound
	}
	delete(m.dead, id)
	ev.DeadAt, ev.RetryFrom, ev.NextAttempt = time.Time{}, now, now
	m.pending[id] = &memPending{ev: ev, due: now}
	return cloneEvent(ev), nil
}

// Stats implements Spool.
func (m *MemorySpool) Stats(context.Context) (store.SpoolStats, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := store.SpoolStats{Pending: len(m.pending), DeadLetters: len(m.dead)}
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
var _ store.Spool = (*MemorySpool)(nil)
