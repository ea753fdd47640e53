package ledger_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/qrphgate/qrphgate/internal/clock"
	"github.com/qrphgate/qrphgate/ledger"
	"github.com/qrphgate/qrphgate/store"
)

var t0 = time.Date(2026, 1, 15, 10, 30, 0, 0, time.UTC)

const merchant = "TEST-0000-0000-0001"

// recorder is an Observer that counts.
type recorder struct {
	mu          sync.Mutex
	transitions map[string]int
	flags       map[string]int
	failures    map[string]int
	events      map[string]int
	sweeps      int
	purged      int
}

func newRecorder() *recorder {
	return &recorder{transitions: map[string]int{}, flags: map[string]int{}, failures: map[string]int{}, events: map[string]int{}}
}

func (r *recorder) Transition(s string) { r.mu.Lock(); r.transitions[s]++; r.mu.Unlock() }
func (r *recorder) Flagged(f string)    { r.mu.Lock(); r.flags[f]++; r.mu.Unlock() }
func (r *recorder) StoreFailed(op string) {
	r.mu.Lock()
	r.failures[op]++
	r.mu.Unlock()
}
func (r *recorder) ExpiryEvent(o string) { r.mu.Lock(); r.events[o]++; r.mu.Unlock() }
func (r *recorder) Swept()               { r.mu.Lock(); r.sweeps++; r.mu.Unlock() }
func (r *recorder) Purged(n int)         { r.mu.Lock(); r.purged += n; r.mu.Unlock() }

func (r *recorder) snapshot(m map[string]int) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return fmt.Sprint(m)
}

// emitter records the expiry events; fail makes it refuse them.
type emitter struct {
	mu     sync.Mutex
	events []ledger.ExpiryEvent
	fail   bool
}

func (e *emitter) EmitExpired(_ context.Context, ev ledger.ExpiryEvent) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.fail {
		return errors.New("spool full")
	}
	e.events = append(e.events, ev)
	return nil
}

func (e *emitter) list() []ledger.ExpiryEvent {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]ledger.ExpiryEvent(nil), e.events...)
}

func (e *emitter) setFail(v bool) { e.mu.Lock(); e.fail = v; e.mu.Unlock() }

// env is a ledger on a memory store with a fake clock.
type env struct {
	l     *ledger.Ledger
	clk   *clock.Fake
	obs   *recorder
	store store.Ledger
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvOn(t, store.NewMemoryLedger(), clock.NewFake(t0))
}

func newEnvOn(t *testing.T, st store.Ledger, clk *clock.Fake) *env {
	t.Helper()
	obs := newRecorder()
	l, err := ledger.New(ledger.Config{Store: st, Clock: clk, Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	return &env{l: l, clk: clk, obs: obs, store: st}
}

var ctx = context.Background()

// record creates a QR of 500.00 PHP, valid 15 minutes from now.
func (e *env) record(t *testing.T, id, ref string) {
	t.Helper()
	now := e.clk.Now()
	if err := e.l.Record(ctx, ledger.QR{ID: id, ActivationCode: merchant, Reference: ref, Amount: 50000, Currency: "PHP",
		CreatedAt: now, ExpiresAt: now.Add(15 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
}

// paid is the webhook for a payment of the QR's own amount.
func paid(id, ref string) ledger.Notification {
	return ledger.Notification{EventID: "evt_" + id, ActivationCode: merchant, Action: "QRPH_SUCCESS", TransactionID: id,
		Reference: ref, Amount: 50000, HasAmount: true, Currency: "PHP"}
}

func (e *env) reconcile(t *testing.T, n ledger.Notification) []string {
	t.Helper()
	if n.ReceivedAt.IsZero() {
		n.ReceivedAt = e.clk.Now()
	}
	flags, err := e.l.Reconcile(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	return flags
}

func (e *env) get(t *testing.T, id string) ledger.Transaction {
	t.Helper()
	tx, err := e.l.Transaction(ctx, id)
	if err != nil {
		t.Fatalf("transaction %s: %v", id, err)
	}
	return tx
}

func (e *env) sweep(t *testing.T) {
	t.Helper()
	if err := e.l.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
}

// failingStore is a ledger store whose server is down.
type failingStore struct{ store.Ledger }

var errDown = fmt.Errorf("%w: redis down", store.ErrUnavailable)

func (failingStore) Insert(context.Context, store.LedgerRecord) (store.LedgerRecord, error) {
	return store.LedgerRecord{}, errDown
}
func (failingStore) Get(context.Context, string) (store.LedgerRecord, error) {
	return store.LedgerRecord{}, errDown
}
func (failingStore) ByReference(context.Context, string, int) ([]store.LedgerRecord, error) {
	return nil, errDown
}
func (failingStore) Due(context.Context, string, time.Time, int) ([]store.LedgerRecord, error) {
	return nil, errDown
}
func (failingStore) Purge(context.Context, time.Time, int) (int, error) { return 0, errDown }
