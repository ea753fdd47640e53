package ledger_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/qrphgate/qrphgate/ledger"
)

// Listings: newest first, filtered, in pages; a bad status or cursor is
// ErrBadQuery.
func TestList(t *testing.T) {
	e := newEnv(t)
	for i := 0; i < 7; i++ {
		e.record(t, fmt.Sprintf("tx-%d", i), fmt.Sprintf("ORDER-%d", i%2))
		e.clk.Advance(time.Second)
	}
	e.reconcile(t, paid("tx-2", "ORDER-0"))
	list := func(q ledger.Query) []string {
		t.Helper()
		var ids []string
		for {
			p, err := e.l.List(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			for _, tx := range p.Transactions {
				ids = append(ids, tx.ID)
			}
			if p.Next == "" {
				return ids
			}
			q.Cursor = p.Next
		}
	}
	if got := fmt.Sprint(list(ledger.Query{Limit: 3})); got != "[tx-6 tx-5 tx-4 tx-3 tx-2 tx-1 tx-0]" {
		t.Fatalf("all: %s", got)
	}
	if got := fmt.Sprint(list(ledger.Query{Limit: 1, Status: ledger.StatusPaid})); got != "[tx-2]" {
		t.Fatalf("paid: %s", got)
	}
	if got := fmt.Sprint(list(ledger.Query{Limit: 2, Reference: "ORDER-1", Since: t0.Add(2 * time.Second), Until: t0.Add(6 * time.Second)})); got != "[tx-5 tx-3]" {
		t.Fatalf("ORDER-1 from 2s to 6s: %s", got)
	}
	for _, q := range []ledger.Query{{Limit: 1, Status: "refunded"}, {Limit: 1, Cursor: "x"}, {}} {
		if _, err := e.l.List(ctx, q); !errors.Is(err, ledger.ErrBadQuery) {
			t.Fatalf("%+v: %v", q, err)
		}
	}
}

// The CSV listing parses with a standard reader, has the documented
// columns, and keeps a spreadsheet from taking a value for a formula.
func TestCSV(t *testing.T) {
	e := newEnv(t)
	e.record(t, "tx-1", "ORDER-1")
	n := paid("tx-1", "ORDER-1")
	n.Amount = 49999
	e.reconcile(t, n)
	orphan := paid("tx-2", "=HYPERLINK(\"http://x\")")
	orphan.ActivationCode = ""
	e.reconcile(t, orphan)
	p, err := e.l.List(ctx, ledger.Query{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w := ledger.NewCSVWriter(&buf)
	if err := w.Write(p.Transactions); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatalf("%v\n%s", err, buf.String())
	}
	if len(rows) != 3 || strings.Join(rows[0], ",") != strings.Join(ledger.CSVHeader, ",") {
		t.Fatalf("rows %q", rows)
	}
	col := func(row []string, name string) string {
		for i, h := range ledger.CSVHeader {
			if h == name {
				return row[i]
			}
		}
		t.Fatalf("no column %s", name)
		return ""
	}
	paidRow, orphanRow := rows[2], rows[1] // newest first
	for name, want := range map[string]string{
		"id": "tx-1", "activation_code": merchant, "merchant_reference_number": "ORDER-1", "amount": "500.00", "currency": "PHP",
		"status": "paid", "created_at": "2026-01-15T10:30:00Z", "expires_at": "2026-01-15T10:45:00Z", "expired_at": "",
		"result_action": "QRPH_SUCCESS", "result_transaction_id": "tx-1", "result_amount_centavos": "49999",
		"result_currency": "PHP", "result_received_at": "2026-01-15T10:30:00Z", "flags": "amount_mismatch", "webhook_id": "evt_tx-1",
	} {
		if got := col(paidRow, name); got != want {
			t.Fatalf("%s = %q, want %q", name, got, want)
		}
	}
	if got := col(orphanRow, "merchant_reference_number"); got != `'=HYPERLINK("http://x")` {
		t.Fatalf("formula cell %q", got)
	}
	if got := col(orphanRow, "flags"); got != "unknown_reference" {
		t.Fatalf("flags %q", got)
	}
	// An empty listing is still a CSV with its header.
	buf.Reset()
	if err := ledger.NewCSVWriter(&buf).Flush(); err != nil || strings.TrimSpace(buf.String()) != strings.Join(ledger.CSVHeader, ",") {
		t.Fatalf("empty: %q %v", buf.String(), err)
	}
}

// Run sweeps on its own (every tenth of the grace, at least every second)
// and stops when its context ends.
func TestRun(t *testing.T) {
	e := newEnv(t)
	e.l.Configure(ledger.Settings{Grace: 20 * time.Second})
	e.record(t, "tx-1", "ORDER-1")
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.l.Run(runCtx)
	}()
	expired := func() bool {
		tx, err := e.l.Transaction(ctx, "tx-1")
		return err == nil && tx.Status == ledger.StatusExpired
	}
	// Step the clock one sweep interval (2 s) at a time until 15m20s
	// have passed: the QR expires on the sweep at or after that.
	for i := 0; i < 460 && !expired(); i++ {
		if !e.clk.WaitForTimers(1, 10*time.Second) {
			t.Fatal("Run is not waiting for its next sweep")
		}
		e.clk.Advance(2 * time.Second)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !expired() {
		if time.Now().After(deadline) {
			t.Fatal("Run did not expire the QR")
		}
		time.Sleep(time.Millisecond)
	}
	if tx := e.get(t, "tx-1"); tx.ExpiredAt.Before(t0.Add(15*time.Minute + 20*time.Second)) {
		t.Fatalf("expired at %v, before expiresAt + grace", tx.ExpiredAt)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop when its context ended")
	}
}
