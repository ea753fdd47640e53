package ledger_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/qrphgate/qrphgate/ledger"
	"github.com/qrphgate/qrphgate/store"
)

// A result that comes before its QR's ledger record (the webhook named the
// QR's id) is kept unmatched; when the QR's record lands, the QR takes the
// result: paid, its own amount and expiry, no unknown_reference, and no
// expiry later. Each transition is counted once.
func TestResultBeforeItsQRByID(t *testing.T) {
	for _, tc := range []struct {
		name   string
		header string // the webhook's activation-code header
	}{
		{"same merchant", merchant},
		{"another header", "REGISTERED-HEADER"}, // the record is replaced, not updated
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			n := paid("tx-1", "ORDER-1")
			n.ActivationCode = tc.header
			if got := fmt.Sprint(e.reconcile(t, n)); got != "[unknown_reference]" {
				t.Fatalf("flags before the QR: %s", got)
			}
			e.record(t, "tx-1", "ORDER-1")
			tx := e.get(t, "tx-1")
			if tx.Status != ledger.StatusPaid || tx.Flags != nil || tx.Amount != 50000 || tx.ActivationCode != merchant ||
				!tx.ExpiresAt.Equal(t0.Add(15*time.Minute)) || tx.Result == nil || tx.Result.EventID != "evt_tx-1" {
				t.Fatalf("after the QR landed: %+v", tx)
			}
			if byRef, err := e.l.ByReference(ctx, merchant, "ORDER-1"); err != nil || byRef.ID != "tx-1" {
				t.Fatalf("by reference: %+v %v", byRef, err)
			}
			e.clk.Advance(3 * time.Hour)
			e.sweep(t)
			if tx := e.get(t, "tx-1"); tx.Status != ledger.StatusPaid {
				t.Fatalf("after the sweep: %s", tx.Status)
			}
			if c, _ := e.l.Counts(ctx); fmt.Sprint(c) != "map[declined:0 expired:0 paid:1 pending:0]" {
				t.Fatalf("counts %v", c)
			}
			if got := e.obs.snapshot(e.obs.transitions); got != "map[paid:1 pending:1]" {
				t.Fatalf("transitions %s", got)
			}
		})
	}
}

// A result with only a reference (or the provider's own payment id) that
// comes before its QR's record is kept as "unmatched-…"; the QR's record
// takes it when it lands, with the checks a result always gets (here its
// amount), and the unmatched record goes.
func TestResultBeforeItsQRByReference(t *testing.T) {
	e := newEnv(t)
	n := paid("", "ORDER-1")
	n.EventID, n.Amount = "evt_1", 40000
	e.reconcile(t, n)
	if _, err := e.l.Transaction(ctx, "unmatched-evt_1"); err != nil {
		t.Fatalf("the early result is not kept: %v", err)
	}
	e.clk.Advance(time.Second)
	e.record(t, "tx-1", "ORDER-1")
	tx := e.get(t, "tx-1")
	if tx.Status != ledger.StatusPaid || fmt.Sprint(tx.Flags) != "[amount_mismatch]" || *tx.Result.Amount != 40000 {
		t.Fatalf("after the QR landed: %+v", tx)
	}
	if _, err := e.l.Transaction(ctx, "unmatched-evt_1"); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("the unmatched record is still there: %v", err)
	}
	if c, _ := e.l.Counts(ctx); fmt.Sprint(c) != "map[declined:0 expired:0 paid:1 pending:0]" {
		t.Fatalf("counts %v", c)
	}
	if got := e.obs.snapshot(e.obs.flags); got != "map[amount_mismatch:1 unknown_reference:1]" {
		t.Fatalf("flags counted %s", got)
	}
}

// An unmatched result older than its QR (beyond the clocks' leeway) is
// another payment's: a new QR with the same reference does not take it.
func TestOldUnmatchedResultIsNotAdopted(t *testing.T) {
	e := newEnv(t)
	n := paid("", "ORDER-1")
	n.EventID = "evt_old"
	e.reconcile(t, n)
	e.clk.Advance(time.Hour)
	e.record(t, "tx-1", "ORDER-1")
	if tx := e.get(t, "tx-1"); tx.Status != ledger.StatusPending || tx.Result != nil {
		t.Fatalf("the new QR took an old result: %+v", tx)
	}
	if tx := e.get(t, "unmatched-evt_old"); tx.Status != ledger.StatusPaid || fmt.Sprint(tx.Flags) != "[unknown_reference]" {
		t.Fatalf("the old result: %+v", tx)
	}
}

// racyStore runs hook once, just before the first Insert whose id has
// prefix: a QR's record landing while a result is being stored.
type racyStore struct {
	store.Ledger
	prefix string
	hook   func()
}

func (s *racyStore) Insert(ctx context.Context, rec store.LedgerRecord) (store.LedgerRecord, error) {
	if h := s.hook; h != nil && strings.HasPrefix(rec.ID, s.prefix) {
		s.hook = nil
		h()
	}
	return s.Ledger.Insert(ctx, rec)
}

// The QR's record lands between the result's lookup (nothing) and its
// unmatched record: the result goes to the QR at once, and its delivery
// carries the QR's flags, not unknown_reference.
func TestQRLandsWhileItsResultIsStored(t *testing.T) {
	rs := &racyStore{Ledger: store.NewMemoryLedger(), prefix: "unmatched-"}
	e := newEnvOn(t, rs, newEnv(t).clk)
	rs.hook = func() { e.record(t, "tx-1", "ORDER-1") }
	n := paid("", "ORDER-1")
	n.EventID = "evt_1"
	if flags := e.reconcile(t, n); flags != nil {
		t.Fatalf("flags %v, want none", flags)
	}
	if tx := e.get(t, "tx-1"); tx.Status != ledger.StatusPaid || tx.Flags != nil {
		t.Fatalf("the QR: %+v", tx)
	}
	if _, err := e.l.Transaction(ctx, "unmatched-evt_1"); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("the unmatched record is still there: %v", err)
	}
	if got := e.obs.snapshot(e.obs.transitions); got != "map[paid:1 pending:1]" {
		t.Fatalf("transitions %s", got)
	}
}
