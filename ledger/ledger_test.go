package ledger_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/qrphgate/qrphgate/ledger"
	"github.com/qrphgate/qrphgate/store"
)

// A recorded QR is pending, found by id and by (merchant, reference), and
// its document has the documented shape.
func TestRecordedQRIsPending(t *testing.T) {
	e := newEnv(t)
	e.record(t, "tx-1", "ORDER-1")
	tx := e.get(t, "tx-1")
	if tx.Status != ledger.StatusPending || tx.Amount != 50000 || tx.AmountText != "500.00" || tx.Currency != "PHP" ||
		tx.ActivationCode != merchant || !tx.ExpiresAt.Equal(t0.Add(15*time.Minute)) || tx.Result != nil || tx.Flags != nil {
		t.Fatalf("transaction %+v", tx)
	}
	doc, _ := json.Marshal(tx.Document())
	want := `{"id":"tx-1","merchantReferenceNumber":"ORDER-1","amount":"500.00","currency":"PHP","status":"pending",` +
		`"createdAt":"2026-01-15T10:30:00Z","expiresAt":"2026-01-15T10:45:00Z"}`
	if string(doc) != want {
		t.Fatalf("document %s\nwant     %s", doc, want)
	}
	if byRef, err := e.l.ByReference(ctx, merchant, "ORDER-1"); err != nil || byRef.ID != "tx-1" {
		t.Fatalf("by reference: %+v %v", byRef, err)
	}
	if _, err := e.l.ByReference(ctx, "TEST-0000-0000-0002", "ORDER-1"); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("another merchant's reference: %v", err)
	}
	if _, err := e.l.Transaction(ctx, "tx-2"); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("unknown id: %v", err)
	}
	if got := e.obs.snapshot(e.obs.transitions); got != "map[pending:1]" {
		t.Fatalf("transitions %s", got)
	}
}

// Every action a webhook may carry, and what it does to a pending QR.
func TestResultTransitions(t *testing.T) {
	for _, tc := range []struct{ action, status string }{
		{"QRPH_SUCCESS", ledger.StatusPaid},
		{"SUCCESS", ledger.StatusPaid},
		{"QRPH_DECLINED", ledger.StatusDeclined},
		{"DECLINED", ledger.StatusDeclined},
		{"MISSING_DESTINATION_ACCOUNT", ledger.StatusDeclined},
		{"UNSUPPORTED_TRANSFER_TYPE", ledger.StatusDeclined},
		{"QRPH_REFUNDED", ledger.StatusPending}, // unknown: recorded, status kept
	} {
		t.Run(tc.action, func(t *testing.T) {
			e := newEnv(t)
			e.record(t, "tx-1", "ORDER-1")
			e.clk.Advance(time.Minute)
			n := paid("tx-1", "ORDER-1")
			n.Action = tc.action
			if flags := e.reconcile(t, n); flags != nil {
				t.Fatalf("flags %v", flags)
			}
			tx := e.get(t, "tx-1")
			if tx.Status != tc.status || tx.Result == nil || tx.Result.Action != tc.action || *tx.Result.Amount != 50000 ||
				tx.Result.Currency != "PHP" || !tx.Result.ReceivedAt.Equal(t0.Add(time.Minute)) || tx.Result.EventID != "evt_tx-1" {
				t.Fatalf("transaction %+v result %+v", tx, tx.Result)
			}
			want := fmt.Sprint(map[string]int{ledger.StatusPending: 1, tc.status: 1})
			if tc.status == ledger.StatusPending {
				want = "map[pending:1]"
			}
			if got := e.obs.snapshot(e.obs.transitions); got != want {
				t.Fatalf("transitions %s, want %s", got, want)
			}
			doc, _ := json.Marshal(tx.Document())
			if !strings.Contains(string(doc), `"result":{"action":"`+tc.action+`","transactionId":"tx-1","amount":50000,"currency":"PHP","receivedAt":"2026-01-15T10:31:00Z"}`) {
				t.Fatalf("document %s", doc)
			}
		})
	}
}

// Each cross-check raises its flag, on the transaction, in the answer
// (which becomes the delivery's header) and in the metrics.
func TestReconciliationFlags(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*ledger.Notification)
		flags  string
	}{
		{"amount", func(n *ledger.Notification) { n.Amount = 40000 }, "[amount_mismatch]"},
		{"currency", func(n *ledger.Notification) { n.Currency = "USD" }, "[currency_mismatch]"},
		{"both", func(n *ledger.Notification) { n.Amount, n.Currency = 1, "USD" }, "[amount_mismatch currency_mismatch]"},
		{"currency in another case matches", func(n *ledger.Notification) { n.Currency = "php" }, "[]"},
		{"no amount stated: nothing to compare", func(n *ledger.Notification) { n.HasAmount, n.Amount = false, 0 }, "[]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.record(t, "tx-1", "ORDER-1")
			n := paid("tx-1", "ORDER-1")
			tc.change(&n)
			if got := fmt.Sprint(e.reconcile(t, n)); got != tc.flags {
				t.Fatalf("flags %s, want %s", got, tc.flags)
			}
			tx := e.get(t, "tx-1")
			if fmt.Sprint(tx.Flags) != tc.flags || tx.Status != ledger.StatusPaid {
				t.Fatalf("transaction flags %v status %s", tx.Flags, tx.Status)
			}
			want := "map[]"
			if tc.flags != "[]" {
				want = "map[" + strings.Join(strings.Fields(strings.Trim(strings.ReplaceAll(tc.flags, " ", ":1 "), "[]")), " ") + ":1]"
			}
			if got := e.obs.snapshot(e.obs.flags); got != want {
				t.Fatalf("flag metrics %s, want %s", got, want)
			}
		})
	}
}

// A result for no QR the ledger knows is kept, flagged unknown_reference,
// under its transaction id (or its event id); a repeat finds it again.
func TestUnknownReference(t *testing.T) {
	e := newEnv(t)
	n := paid("tx-9", "ORDER-9")
	if got := fmt.Sprint(e.reconcile(t, n)); got != "[unknown_reference]" {
		t.Fatalf("flags %s", got)
	}
	tx := e.get(t, "tx-9")
	if tx.Status != ledger.StatusPaid || tx.Reference != "ORDER-9" || tx.Amount != 50000 || !tx.ExpiresAt.IsZero() || tx.Result == nil {
		t.Fatalf("orphan %+v", tx)
	}
	doc, _ := json.Marshal(tx.Document())
	if strings.Contains(string(doc), "expiresAt") || !strings.Contains(string(doc), `"flags":["unknown_reference"]`) {
		t.Fatalf("document %s", doc)
	}
	if got := fmt.Sprint(e.reconcile(t, n)); got != "[unknown_reference]" {
		t.Fatalf("repeat: flags %s", got)
	}
	// Without a transaction id, by reference: the first is kept under its
	// event id, and the repeat matches it by reference.
	m := paid("", "ORDER-8")
	m.EventID = "evt_A"
	if got := fmt.Sprint(e.reconcile(t, m)); got != "[unknown_reference]" {
		t.Fatalf("flags %s", got)
	}
	e.get(t, "unmatched-evt_A")
	m.EventID = "evt_B"
	e.reconcile(t, m)
	if _, err := e.l.Transaction(ctx, "unmatched-evt_B"); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("a repeat made a second entry: %v", err)
	}
	if got := e.obs.snapshot(e.obs.flags); got != "map[unknown_reference:2]" {
		t.Fatalf("flag metrics %s", got)
	}
	if got := e.obs.snapshot(e.obs.transitions); got != "map[paid:2]" {
		t.Fatalf("transitions %s", got)
	}
}

// A result is late once expiresAt plus the grace has passed, whether or
// not the sweep expired the QR yet; within the grace it is not.
func TestLateResult(t *testing.T) {
	e := newEnv(t)
	e.l.Configure(ledger.Settings{Grace: 10 * time.Minute})
	for _, id := range []string{"a", "b", "c"} {
		e.record(t, id, "ORDER-"+id)
	}
	e.clk.Advance(24 * time.Minute) // 9 minutes into the grace
	if got := fmt.Sprint(e.reconcile(t, paid("a", "ORDER-a"))); got != "[]" {
		t.Fatalf("within the grace: %s", got)
	}
	e.clk.Advance(time.Minute) // expiresAt + grace: late, not swept yet
	if got := fmt.Sprint(e.reconcile(t, paid("b", "ORDER-b"))); got != "[late_result]" {
		t.Fatalf("after the grace: %s", got)
	}
	e.sweep(t)
	if tx := e.get(t, "c"); tx.Status != ledger.StatusExpired {
		t.Fatalf("c is %s", tx.Status)
	}
	n := paid("c", "ORDER-c")
	n.Amount = 1
	if got := fmt.Sprint(e.reconcile(t, n)); got != "[late_result amount_mismatch]" {
		t.Fatalf("after expiry: %s", got)
	}
	if tx := e.get(t, "c"); tx.Status != ledger.StatusPaid || !tx.ExpiredAt.Equal(t0.Add(25*time.Minute)) {
		t.Fatalf("an expired QR that is paid after all: %+v", tx)
	}
	if got := e.obs.snapshot(e.obs.transitions); got != "map[expired:1 paid:3 pending:3]" {
		t.Fatalf("transitions %s", got)
	}
}

// A webhook whose transaction id is not the QR's (or missing) is matched
// by reference; the activation-code header narrows that to its merchant
// when it names one, and a QR still waiting for its result comes first.
func TestMatchByReference(t *testing.T) {
	e := newEnv(t)
	e.record(t, "old", "ORDER-1")
	e.reconcile(t, paid("old", "ORDER-1"))
	e.clk.Advance(time.Minute)
	e.record(t, "new", "ORDER-1")
	if err := e.l.Record(ctx, ledger.QR{ID: "other", ActivationCode: "TEST-0000-0000-0002", Reference: "ORDER-1",
		Amount: 100, Currency: "PHP", CreatedAt: e.clk.Now().Add(time.Second), ExpiresAt: e.clk.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	n := paid("provider-payment-7", "ORDER-1")
	if got := fmt.Sprint(e.reconcile(t, n)); got != "[]" {
		t.Fatalf("flags %s", got)
	}
	if tx := e.get(t, "new"); tx.Status != ledger.StatusPaid || tx.Result.TransactionID != "provider-payment-7" {
		t.Fatalf("new %+v", tx)
	}
	if tx := e.get(t, "other"); tx.Status != ledger.StatusPending {
		t.Fatalf("the other merchant's QR was settled: %+v", tx)
	}
	// A header that names no QR's merchant (the provider echoes whatever
	// was registered) does not stop the match.
	m := paid("", "ORDER-1")
	m.ActivationCode, m.Amount = "MERCHANT_ABC_123", 100
	if got := fmt.Sprint(e.reconcile(t, m)); got != "[]" {
		t.Fatalf("flags %s", got)
	}
	if tx := e.get(t, "other"); tx.Status != ledger.StatusPaid {
		t.Fatalf("other %+v", tx)
	}
}

// A repeated result changes nothing and gets the same flags; a different
// second result is logged and the first kept.
func TestRepeatedResult(t *testing.T) {
	e := newEnv(t)
	e.record(t, "tx-1", "ORDER-1")
	n := paid("tx-1", "ORDER-1")
	n.Amount = 1
	first := e.reconcile(t, n)
	again := e.reconcile(t, n)
	n.Action = "QRPH_DECLINED"
	other := e.reconcile(t, n)
	if fmt.Sprint(first, again, other) != "[amount_mismatch] [amount_mismatch] [amount_mismatch]" {
		t.Fatalf("flags %v %v %v", first, again, other)
	}
	if tx := e.get(t, "tx-1"); tx.Status != ledger.StatusPaid || tx.Result.Action != "QRPH_SUCCESS" {
		t.Fatalf("transaction %+v", tx)
	}
	if got := e.obs.snapshot(e.obs.flags) + e.obs.snapshot(e.obs.transitions); got != "map[amount_mismatch:1]map[paid:1 pending:1]" {
		t.Fatalf("metrics %s", got)
	}
}

// A pending QR expires once expiresAt plus the grace has passed, not
// before; without expiry events nothing is emitted.
func TestExpiry(t *testing.T) {
	e := newEnv(t)
	em := new(emitter)
	e.l.Configure(ledger.Settings{Grace: time.Hour, Emitter: em})
	e.record(t, "tx-1", "ORDER-1")
	e.record(t, "tx-2", "ORDER-2")
	e.reconcile(t, paid("tx-2", "ORDER-2"))
	e.clk.Advance(15*time.Minute + time.Hour - time.Second)
	e.sweep(t)
	if tx := e.get(t, "tx-1"); tx.Status != ledger.StatusPending {
		t.Fatalf("expired a second early: %+v", tx)
	}
	e.clk.Advance(time.Second)
	e.sweep(t)
	tx := e.get(t, "tx-1")
	if tx.Status != ledger.StatusExpired || !tx.ExpiredAt.Equal(e.clk.Now()) || !tx.ExpiryEventAt.IsZero() {
		t.Fatalf("transaction %+v", tx)
	}
	if tx := e.get(t, "tx-2"); tx.Status != ledger.StatusPaid {
		t.Fatalf("a paid QR expired: %+v", tx)
	}
	if len(em.list()) != 0 {
		t.Fatalf("events without expiry_events: %v", em.list())
	}
	if c, _ := e.l.Counts(ctx); fmt.Sprint(c) != "map[declined:0 expired:1 paid:1 pending:0]" {
		t.Fatalf("counts %v", c)
	}
}

// With expiry events on, each expired QR's QRPH_EXPIRED event is emitted
// once, with the documented body; one that could not be queued is tried
// again after the lease, under the same key; a result that comes first
// cancels it.
func TestExpiryEvents(t *testing.T) {
	e := newEnv(t)
	em := new(emitter)
	e.l.Configure(ledger.Settings{Grace: time.Minute, ExpiryEvents: true, Emitter: em})
	e.record(t, "tx-1", "ORDER-1")
	e.record(t, "tx-2", "ORDER-2")
	e.record(t, "tx-3", "ORDER-3")
	e.clk.Advance(16 * time.Minute)
	em.setFail(true) // the spool refuses: every event waits
	e.sweep(t)
	em.setFail(false)
	for _, id := range []string{"tx-1", "tx-2", "tx-3"} {
		if tx := e.get(t, id); tx.Status != ledger.StatusExpired {
			t.Fatalf("%s %+v", id, tx)
		}
	}
	e.reconcile(t, paid("tx-3", "ORDER-3")) // paid late: no expiry event for it
	e.sweep(t)                              // within the lease: nothing
	if n := len(em.list()); n != 0 {
		t.Fatalf("%d events within the lease", n)
	}
	e.clk.Advance(time.Minute)
	e.sweep(t)
	e.sweep(t)
	evs := em.list()
	if len(evs) != 2 {
		t.Fatalf("events %+v, want tx-1 and tx-2 once each", evs)
	}
	expiredAt := t0.Add(16 * time.Minute)
	for i, ev := range evs {
		id := []string{"tx-1", "tx-2"}[i]
		want := `{"action":"QRPH_EXPIRED","transactionId":"` + id + `","referenceNumber":"ORDER-` + id[3:] +
			`","amount":50000,"currency":"PHP","expiredAt":"2026-01-15T10:46:00Z"}`
		if string(ev.Body) != want || ev.Key != "expired:"+id || !ev.At.Equal(expiredAt) || ev.TransactionID != id {
			t.Fatalf("event %d: %+v body %s\nwant %s", i, ev, ev.Body, want)
		}
		if tx := e.get(t, id); !tx.ExpiryEventAt.Equal(e.clk.Now()) {
			t.Fatalf("%s not marked sent: %+v", id, tx)
		}
	}
	if got := e.obs.snapshot(e.obs.events); got != "map[emitted:2 failed:3]" {
		t.Fatalf("event metrics %s", got)
	}
	// A QR expiring while the spool takes events is emitted in the same
	// pass.
	e.record(t, "tx-4", "ORDER-4")
	e.clk.Advance(16 * time.Minute)
	e.sweep(t)
	if n := len(em.list()); n != 3 {
		t.Fatalf("%d events", n)
	}
}

// Expiry events are on, but this process has nothing to send them with:
// it leaves the QRs to a replica that has.
func TestExpiryEventsWithoutEmitter(t *testing.T) {
	e := newEnv(t)
	e.l.Configure(ledger.Settings{Grace: time.Minute, ExpiryEvents: true})
	e.record(t, "tx-1", "ORDER-1")
	e.clk.Advance(time.Hour)
	e.sweep(t)
	if tx := e.get(t, "tx-1"); tx.Status != ledger.StatusPending {
		t.Fatalf("expired with no way to send its event: %+v", tx)
	}
}

// Turning expiry events off drops the events still waiting.
func TestExpiryEventsTurnedOff(t *testing.T) {
	e := newEnv(t)
	em := &emitter{fail: true}
	e.l.Configure(ledger.Settings{Grace: time.Minute, ExpiryEvents: true, Emitter: em})
	e.record(t, "tx-1", "ORDER-1")
	e.clk.Advance(time.Hour)
	e.sweep(t)
	e.l.Configure(ledger.Settings{Grace: time.Minute, Emitter: em})
	e.clk.Advance(time.Hour)
	e.sweep(t)
	em.setFail(false)
	e.l.Configure(ledger.Settings{Grace: time.Minute, ExpiryEvents: true, Emitter: em})
	e.clk.Advance(time.Hour)
	e.sweep(t)
	if n := len(em.list()); n != 0 {
		t.Fatalf("%d events after they were turned off", n)
	}
}

// Two replicas sweeping one ledger at once: each QR expires once and its
// event is emitted once.
func TestExpiryAcrossReplicas(t *testing.T) {
	shared := store.NewMemoryLedger()
	a := newEnvOn(t, shared, newEnv(t).clk)
	b := newEnvOn(t, shared, a.clk)
	em := new(emitter)
	for _, r := range []*env{a, b} {
		r.l.Configure(ledger.Settings{Grace: time.Minute, ExpiryEvents: true, Emitter: em})
	}
	for i := 0; i < 50; i++ {
		a.record(t, fmt.Sprintf("tx-%02d", i), fmt.Sprintf("ORDER-%d", i))
	}
	a.clk.Advance(time.Hour)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = []*env{a, b}[i%2].l.Sweep(ctx)
		}()
	}
	wg.Wait()
	seen := map[string]int{}
	for _, ev := range em.list() {
		seen[ev.TransactionID]++
	}
	if len(seen) != 50 {
		t.Fatalf("%d QRs got an event, want 50", len(seen))
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("%s: %d events", id, n)
		}
	}
	if ta, tb := a.obs.snapshot(a.obs.transitions), b.obs.snapshot(b.obs.transitions); !strings.Contains(ta+tb, "expired") {
		t.Fatalf("transitions %s %s", ta, tb)
	}
	a.obs.mu.Lock()
	b.obs.mu.Lock()
	total := a.obs.transitions["expired"] + b.obs.transitions["expired"]
	a.obs.mu.Unlock()
	b.obs.mu.Unlock()
	if total != 50 {
		t.Fatalf("%d expiries counted across the replicas, want 50", total)
	}
}

// Entries older than the retention are purged; younger ones stay.
func TestRetention(t *testing.T) {
	e := newEnv(t)
	e.l.Configure(ledger.Settings{Grace: time.Hour, Retention: 48 * time.Hour})
	e.record(t, "old", "ORDER-1")
	e.clk.Advance(24 * time.Hour)
	e.record(t, "young", "ORDER-2")
	e.clk.Advance(24*time.Hour + time.Nanosecond)
	if n, err := e.l.Purge(ctx); err != nil || n != 1 {
		t.Fatalf("purge: %d %v", n, err)
	}
	if _, err := e.l.Transaction(ctx, "old"); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("old: %v", err)
	}
	e.get(t, "young")
	if e.obs.purged != 1 {
		t.Fatalf("purged metric %d", e.obs.purged)
	}
}

// A store that fails never fails the caller's payment: each call returns
// its error (the caller goes on), and the failure is counted.
func TestStoreFailures(t *testing.T) {
	e := newEnvOn(t, failingStore{store.NewMemoryLedger()}, newEnv(t).clk)
	if err := e.l.Record(ctx, ledger.QR{ID: "tx-1", Reference: "R", CreatedAt: t0}); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("record: %v", err)
	}
	flags, err := e.l.Reconcile(ctx, paid("tx-1", "R"))
	if flags != nil || !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("reconcile: %v %v", flags, err)
	}
	if err := e.l.Sweep(ctx); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("sweep: %v", err)
	}
	if _, err := e.l.Purge(ctx); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("purge: %v", err)
	}
	if _, err := e.l.Transaction(ctx, "tx-1"); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("lookup: %v", err)
	}
	if got := e.obs.snapshot(e.obs.failures); got != "map[expire:1 lookup:1 purge:1 reconcile:1 record:1]" {
		t.Fatalf("failures %s", got)
	}
}

// listThenRead is a store that, like Redis, lists due records and then
// reads them: between the two, before runs (a result arriving).
type listThenRead struct {
	store.Ledger
	before func()
}

func (s listThenRead) Due(ctx context.Context, status string, before time.Time, max int) ([]store.LedgerRecord, error) {
	recs, err := s.Ledger.Due(ctx, status, before, max)
	if err != nil || s.before == nil {
		return recs, err
	}
	s.before()
	ids := make([]string, len(recs))
	for i, r := range recs {
		ids[i] = r.ID
	}
	return s.Ledger.GetMany(ctx, ids)
}

// A QR paid between the sweep's listing and its read stays paid: the sweep
// expires only what is still pending and due.
func TestSweepSkipsWhatChangedMeanwhile(t *testing.T) {
	inner := store.NewMemoryLedger()
	var e *env
	lt := listThenRead{Ledger: inner}
	e = newEnvOn(t, &lt, newEnv(t).clk)
	e.l.Configure(ledger.Settings{Grace: time.Minute})
	e.record(t, "tx-1", "ORDER-1")
	e.clk.Advance(time.Hour)
	lt.before = func() { e.reconcile(t, paid("tx-1", "ORDER-1")) }
	e.sweep(t)
	if tx := e.get(t, "tx-1"); tx.Status != ledger.StatusPaid {
		t.Fatalf("a QR paid meanwhile became %s", tx.Status)
	}
}

// Unreadable entries do not keep a sweep busy for ever: a batch that
// expires nothing ends the pass.
func TestSweepEndsOnUnreadableEntries(t *testing.T) {
	e := newEnv(t)
	for i := 0; i < 150; i++ {
		if _, err := e.store.Insert(ctx, store.LedgerRecord{ID: fmt.Sprintf("bad-%d", i), Reference: "R", Status: ledger.StatusPending,
			Created: t0, Due: t0, Data: []byte("not json")}); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan error, 1)
	go func() { done <- e.l.Sweep(ctx) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the sweep does not end")
	}
}

// A result that matched no QR keeps what it stated as stated, and gives
// the transaction only what can be a QR's: no negative amount, the
// currency in capitals.
func TestUnknownReferenceKeepsTheStatement(t *testing.T) {
	e := newEnv(t)
	n := paid("tx-7", "ORDER-7")
	n.Amount, n.Currency = -5, "usd"
	e.reconcile(t, n)
	tx := e.get(t, "tx-7")
	if tx.Amount != 0 || tx.AmountText != "0.00" || tx.Currency != "USD" || *tx.Result.Amount != -5 || tx.Result.Currency != "usd" {
		t.Fatalf("orphan %+v result %+v", tx, tx.Result)
	}
}

// Payment values in the ledger's log lines go through proxy.LogString: a reference or id
// holding a line break or a C1 control cannot forge a log line.
func TestLogLinesAreSafe(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	l, err := ledger.New(ledger.Config{Store: store.NewMemoryLedger(), Clock: newEnv(t).clk, Logger: zap.New(core)})
	if err != nil {
		t.Fatal(err)
	}
	n := paid("tx\u2028forged", "R\u0085forged")
	n.Currency = "P\nP"
	if _, err := l.Reconcile(ctx, n); err != nil {
		t.Fatal(err)
	}
	lines := logs.FilterMessageSnippet("flagged for reconciliation").All()
	if len(lines) != 1 {
		t.Fatalf("%d flagged lines", len(lines))
	}
	fields := lines[0].ContextMap()
	for key, want := range map[string]string{"reference": `R\u0085forged`, "transaction_id": `tx\u2028forged`, "stated_currency": `P\u000aP`} {
		if fields[key] != want {
			t.Errorf("%s logged as %q, want %q", key, fields[key], want)
		}
	}
}
