package ledger_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qrphgate/qrphgate/internal/clock"
	"github.com/qrphgate/qrphgate/ledger"
	"github.com/qrphgate/qrphgate/store"
)

// hangingStore never answers, whatever its context says, until released:
// a store stuck below its client's deadlines.
type hangingStore struct {
	store.Ledger
	release chan struct{}
}

func newHangingStore(t *testing.T) *hangingStore {
	h := &hangingStore{Ledger: store.NewMemoryLedger(), release: make(chan struct{})}
	t.Cleanup(func() { close(h.release) })
	return h
}

func (h *hangingStore) Insert(context.Context, store.LedgerRecord) (store.LedgerRecord, error) {
	<-h.release
	return store.LedgerRecord{}, errors.New("released")
}

func (h *hangingStore) Get(context.Context, string) (store.LedgerRecord, error) {
	<-h.release
	return store.LedgerRecord{}, errors.New("released")
}

// within fails the test when f has not returned after a generous while:
// the calls under test must not block (their bound is milliseconds).
func within(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("%s blocked on a store that does not answer", what)
	}
}

// A store that never answers holds neither Record nor Reconcile beyond the
// call bound: each returns its error (the payment goes on), counted once.
func TestHangingStoreIsBounded(t *testing.T) {
	hs := newHangingStore(t)
	obs := newRecorder()
	l, err := ledger.New(ledger.Config{Store: hs, Clock: clock.NewFake(t0), Observer: obs, CallTimeout: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	within(t, "Record", func() {
		err = l.Record(ctx, ledger.QR{ID: "tx-1", Reference: "R", CreatedAt: t0})
	})
	if err == nil || !strings.Contains(err.Error(), "did not answer in time") {
		t.Fatalf("record: %v", err)
	}
	var flags []string
	within(t, "Reconcile", func() { flags, err = l.Reconcile(ctx, paid("tx-1", "R")) })
	if flags != nil || err == nil || !strings.Contains(err.Error(), "did not answer in time") {
		t.Fatalf("reconcile: %v %v", flags, err)
	}
	if got := obs.snapshot(obs.failures); got != "map[reconcile:1 record:1]" {
		t.Fatalf("failures %s", got)
	}
}

// Against a store that keeps hanging, abandoned calls pile up to a bound;
// past it a call fails at once without starting.
func TestHangingStoreStopsPilingUp(t *testing.T) {
	hs := newHangingStore(t)
	l, err := ledger.New(ledger.Config{Store: hs, Clock: clock.NewFake(t0), CallTimeout: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 256; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = l.Record(ctx, ledger.QR{ID: "tx", Reference: "R", CreatedAt: t0})
		}()
	}
	within(t, "256 Records", wg.Wait)
	within(t, "one more Record", func() { err = l.Record(ctx, ledger.QR{ID: "tx", Reference: "R", CreatedAt: t0}) })
	if err == nil || !strings.Contains(err.Error(), "the call was not made") {
		t.Fatalf("record past the bound: %v", err)
	}
}
