package store

import (
	"context"
	"slices"
	"sort"
	"sync"
	"time"
)

// MemoryLedger is the payments ledger in process memory: the default for
// one sidecar, lost when it stops. The file ledger (OpenFileLedger) is a
// MemoryLedger with a journal: every change is also written to disk, in
// order, and the call returns once it is durable.
type MemoryLedger struct {
	journal ledgerJournal // nil: memory only

	mu     sync.Mutex
	closed bool
	recs   map[string]LedgerRecord
	order  []string                        // members (ledgerMember), ascending
	byRef  map[string]map[string]struct{}  // reference -> members
	due    map[string]map[string]time.Time // status -> id -> due
	counts map[string]int
}

// ledgerJournal records a MemoryLedger's changes durably. Its methods are
// called under the ledger's lock, in the order of the changes, and only
// queue the write; the caller waits on the returned channel after
// unlocking.
type ledgerJournal interface {
	putRecord(rec LedgerRecord) <-chan error
	deleteRecord(id string) <-chan error
}

// NewMemoryLedger returns an empty ledger.
func NewMemoryLedger() *MemoryLedger {
	return &MemoryLedger{
		recs:   make(map[string]LedgerRecord),
		byRef:  make(map[string]map[string]struct{}),
		due:    make(map[string]map[string]time.Time),
		counts: make(map[string]int),
	}
}

func cloneRecord(rec LedgerRecord) LedgerRecord {
	rec.Data = slices.Clone(rec.Data)
	return rec
}

// index adds rec to every index (not to recs).
func (m *MemoryLedger) index(rec LedgerRecord) {
	mem := ledgerMember(rec.Created, rec.ID)
	i, _ := slices.BinarySearch(m.order, mem)
	m.order = slices.Insert(m.order, i, mem)
	if rec.Reference != "" {
		if m.byRef[rec.Reference] == nil {
			m.byRef[rec.Reference] = make(map[string]struct{})
		}
		m.byRef[rec.Reference][mem] = struct{}{}
	}
	m.indexStatus(rec)
}

// indexStatus adds rec's status and due time to the counts and due index.
func (m *MemoryLedger) indexStatus(rec LedgerRecord) {
	m.counts[rec.Status]++
	if !rec.Due.IsZero() {
		if m.due[rec.Status] == nil {
			m.due[rec.Status] = make(map[string]time.Time)
		}
		m.due[rec.Status][rec.ID] = rec.Due
	}
}

func (m *MemoryLedger) unindexStatus(rec LedgerRecord) {
	if m.counts[rec.Status]--; m.counts[rec.Status] <= 0 {
		delete(m.counts, rec.Status)
	}
	if d := m.due[rec.Status]; d != nil {
		delete(d, rec.ID)
		if len(d) == 0 {
			delete(m.due, rec.Status)
		}
	}
}

// unindex removes rec from every index (not from recs).
func (m *MemoryLedger) unindex(rec LedgerRecord) {
	mem := ledgerMember(rec.Created, rec.ID)
	if i, ok := slices.BinarySearch(m.order, mem); ok {
		m.order = slices.Delete(m.order, i, i+1)
	}
	if refs := m.byRef[rec.Reference]; refs != nil {
		delete(refs, mem)
		if len(refs) == 0 {
			delete(m.byRef, rec.Reference)
		}
	}
	m.unindexStatus(rec)
}

// load adds a stored record as it is (the file ledger's start-up).
func (m *MemoryLedger) load(rec LedgerRecord) {
	m.recs[rec.ID] = rec
	m.index(rec)
}

// Insert implements Ledger.
func (m *MemoryLedger) Insert(_ context.Context, rec LedgerRecord) (LedgerRecord, error) {
	if err := checkLedgerRecord(rec); err != nil {
		return LedgerRecord{}, err
	}
	rec = cloneRecord(rec)
	rec.Version = 1
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return LedgerRecord{}, ErrClosed
	}
	if _, ok := m.recs[rec.ID]; ok {
		m.mu.Unlock()
		return LedgerRecord{}, ErrRecordExists
	}
	m.load(rec)
	var done <-chan error
	if m.journal != nil {
		done = m.journal.putRecord(rec)
	}
	m.mu.Unlock()
	return cloneRecord(rec), durable(done, "ledger insert")
}

// Get implements Ledger.
func (m *MemoryLedger) Get(_ context.Context, id string) (LedgerRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return LedgerRecord{}, ErrClosed
	}
	rec, ok := m.recs[id]
	if !ok {
		return LedgerRecord{}, ErrRecordNotFound
	}
	return cloneRecord(rec), nil
}

// GetMany implements Ledger.
func (m *MemoryLedger) GetMany(_ context.Context, ids []string) ([]LedgerRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	out := make([]LedgerRecord, 0, len(ids))
	for _, id := range ids {
		if rec, ok := m.recs[id]; ok {
			out = append(out, cloneRecord(rec))
		}
	}
	return out, nil
}

// ByReference implements Ledger.
func (m *MemoryLedger) ByReference(_ context.Context, ref string, max int) ([]LedgerRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	mems := make([]string, 0, len(m.byRef[ref]))
	for mem := range m.byRef[ref] {
		mems = append(mems, mem)
	}
	sort.Sort(sort.Reverse(sort.StringSlice(mems)))
	out := make([]LedgerRecord, 0, min(len(mems), max))
	for _, mem := range mems {
		if len(out) >= max {
			break
		}
		out = append(out, cloneRecord(m.recs[memberID(mem)]))
	}
	return out, nil
}

// Update implements Ledger.
func (m *MemoryLedger) Update(_ context.Context, rec LedgerRecord) (LedgerRecord, error) {
	if err := checkLedgerRecord(rec); err != nil {
		return LedgerRecord{}, err
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return LedgerRecord{}, ErrClosed
	}
	cur, ok := m.recs[rec.ID]
	switch {
	case !ok:
		m.mu.Unlock()
		return LedgerRecord{}, ErrRecordNotFound
	case cur.Version != rec.Version:
		m.mu.Unlock()
		return LedgerRecord{}, ErrConflict
	}
	m.unindexStatus(cur)
	next := cur
	next.Status, next.Due, next.Data, next.Version = rec.Status, rec.Due, slices.Clone(rec.Data), cur.Version+1
	m.recs[rec.ID] = next
	m.indexStatus(next)
	var done <-chan error
	if m.journal != nil {
		done = m.journal.putRecord(next)
	}
	m.mu.Unlock()
	return cloneRecord(next), durable(done, "ledger update")
}

// Due implements Ledger.
func (m *MemoryLedger) Due(_ context.Context, status string, before time.Time, max int) ([]LedgerRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	var out []LedgerRecord
	for id, due := range m.due[status] {
		if !due.After(before) {
			out = append(out, m.recs[id])
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Due.Equal(out[j].Due) {
			return out[i].Due.Before(out[j].Due)
		}
		return out[i].ID < out[j].ID
	})
	if len(out) > max {
		out = out[:max]
	}
	for i := range out {
		out[i] = cloneRecord(out[i])
	}
	return out, nil
}

// List implements Ledger.
func (m *MemoryLedger) List(_ context.Context, q LedgerQuery) (LedgerPage, error) {
	if err := checkLedgerQuery(q); err != nil {
		return LedgerPage{}, err
	}
	lo, hi, err := ledgerBounds(q)
	if err != nil {
		return LedgerPage{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return LedgerPage{}, ErrClosed
	}
	i := len(m.order)
	if hi != "" {
		i = sort.SearchStrings(m.order, hi) // first member >= hi
	}
	var page LedgerPage
	for i--; i >= 0 && m.order[i] >= lo; i-- {
		rec := m.recs[memberID(m.order[i])]
		if (q.Status != "" && rec.Status != q.Status) || (q.Reference != "" && rec.Reference != q.Reference) {
			continue
		}
		if len(page.Records) == q.Limit {
			page.Next = encodeCursor(ledgerMember(page.Records[q.Limit-1].Created, page.Records[q.Limit-1].ID))
			break
		}
		page.Records = append(page.Records, cloneRecord(rec))
	}
	return page, nil
}

// Counts implements Ledger.
func (m *MemoryLedger) Counts(context.Context) (map[string]int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	out := make(map[string]int, len(m.counts))
	for s, n := range m.counts {
		out[s] = n
	}
	return out, nil
}

// Delete implements Ledger.
func (m *MemoryLedger) Delete(_ context.Context, id string, version int64) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	cur, ok := m.recs[id]
	switch {
	case !ok:
		m.mu.Unlock()
		return ErrRecordNotFound
	case cur.Version != version:
		m.mu.Unlock()
		return ErrConflict
	}
	m.unindex(cur)
	delete(m.recs, id)
	var done <-chan error
	if m.journal != nil {
		done = m.journal.deleteRecord(id)
	}
	m.mu.Unlock()
	return durable(done, "ledger delete")
}

// Purge implements Ledger.
func (m *MemoryLedger) Purge(_ context.Context, before time.Time, max int) (int, error) {
	bound := ledgerTimeBound(before)
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return 0, ErrClosed
	}
	var dones []<-chan error
	n := 0
	for n < max && len(m.order) > 0 && m.order[0] < bound {
		rec := m.recs[memberID(m.order[0])]
		m.unindex(rec)
		delete(m.recs, rec.ID)
		if m.journal != nil {
			dones = append(dones, m.journal.deleteRecord(rec.ID))
		}
		n++
	}
	m.mu.Unlock()
	for _, d := range dones {
		if err := durable(d, "ledger purge"); err != nil {
			return n, err
		}
	}
	return n, nil
}

// Close implements Ledger: the ledger refuses every call from now on.
func (m *MemoryLedger) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	return nil
}

// Interface guard.
var _ Ledger = (*MemoryLedger)(nil)
