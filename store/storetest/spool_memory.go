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
	mu        sync.Mutex
	pending   map[string]*memPending
	dead      map[string]store.SpoolEvent
	delivered map[string]store.SpoolEvent
	closed    bool
}

type memPending struct {
	ev  store.SpoolEvent
	due time.Time // NextAttempt, or the end of a claim's lease
}

// NewMemorySpool returns an empty MemorySpool.
func NewMemorySpool() *MemorySpool {
	return &MemorySpool{pending: make(map[string]*memPending), dead: make(map[string]store.SpoolEvent),
		delivered: make(map[string]store.SpoolEvent)}
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
	if _, ok := m.delivered[ev.ID]; ok {
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
	if ok {
		delete(m.dead, id)
	} else if ev, ok = m.delivered[id]; ok {
		delete(m.delivered, id)
	} else {
		return store.SpoolEvent{}, store.ErrNotFound
	}
	ev.DeadAt, ev.DeliveredAt, ev.RetryFrom, ev.NextAttempt = time.Time{}, time.Time{}, now, now
	m.pending[id] = &memPending{ev: ev, due: now}
	return cloneEvent(ev), nil
}

// Archive implements Spool.
func (m *MemorySpool) Archive(_ context.Context, id string, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.pending[id]
	if !ok {
		return store.ErrNotFound
	}
	delete(m.pending, id)
	p.ev.DeliveredAt = at
	m.delivered[id] = p.ev
	return nil
}

// Events implements Spool.
func (m *MemorySpool) Events(_ context.Context, q store.EventQuery) (store.EventPage, error) {
	if err := q.Check(); err != nil {
		return store.EventPage{}, err
	}
	m.mu.Lock()
	all := make([]store.SpoolEvent, 0, len(m.pending)+len(m.dead)+len(m.delivered))
	for _, p := range m.pending {
		all = append(all, p.ev)
	}
	for _, evs := range []map[string]store.SpoolEvent{m.dead, m.delivered} {
		for _, ev := range evs {
			all = append(all, ev)
		}
	}
	m.mu.Unlock()
	sort.Slice(all, func(i, j int) bool { return all[i].ID > all[j].ID })
	var page store.EventPage
	for _, ev := range all {
		switch {
		case q.Cursor != "" && ev.ID >= q.Cursor,
			q.Status != "" && ev.Status() != q.Status,
			q.Reference != "" && ev.Reference != q.Reference,
			!q.Since.IsZero() && ev.Received.Before(q.Since),
			!q.Until.IsZero() && !ev.Received.Before(q.Until):
			continue
		}
		if len(page.Events) == q.Limit {
			page.Next = page.Events[q.Limit-1].ID
			break
		}
		ev.Body = nil
		page.Events = append(page.Events, ev)
	}
	return page, nil
}

// Purge implements Spool.
func (m *MemorySpool) Purge(_ context.Context, deliveredBefore, deadBefore time.Time, max int) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for id, ev := range m.delivered {
		if n < max && !deliveredBefore.IsZero() && ev.DeliveredAt.Before(deliveredBefore) {
			delete(m.delivered, id)
			n++
		}
	}
	for id, ev := range m.dead {
		if n < max && !deadBefore.IsZero() && ev.DeadAt.Before(deadBefore) {
			delete(m.dead, id)
			n++
		}
	}
	return n, nil
}

// Stats implements Spool.
func (m *MemorySpool) Stats(context.Context) (store.SpoolStats, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := store.SpoolStats{Pending: len(m.pending), DeadLetters: len(m.dead), Delivered: len(m.delivered)}
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
