package inbound

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qrphgate/qrphgate/internal/clock"
	"github.com/qrphgate/qrphgate/proxy"
	"github.com/qrphgate/qrphgate/store"
	"github.com/qrphgate/qrphgate/store/storetest"
)

// auditLog is an Auditor that records what it is told.
type auditLog struct {
	mu  sync.Mutex
	evs []proxy.AuditEvent
}

func (a *auditLog) Audit(e proxy.AuditEvent) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.evs = append(a.evs, e)
}

func (a *auditLog) events(kind string) []proxy.AuditEvent {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []proxy.AuditEvent
	for _, e := range a.evs {
		if e.Event == kind {
			out = append(out, e)
		}
	}
	return out
}

func testSealer(t *testing.T, n byte) *store.Sealer {
	t.Helper()
	s, err := store.NewSealer([]byte("FAKE-TEST-at-rest-key-inbound-0" + string('0'+n)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// An event that cannot be decrypted is never delivered and never dropped:
// it becomes a dead letter with reason undecryptable, counted and audited;
// once the key is back it is replayed and delivered.
func TestUndecryptableEventIsDeadLettered(t *testing.T) {
	c := clock.NewFake(time.Time{})
	app := newAppStandIn(t, c, nil)
	at := store.NewAtRest(testSealer(t, 1))
	spool, err := store.OpenBolt(filepath.Join(t.TempDir(), "spool.db"), store.BoltOptions{AtRest: at, SweepEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer spool.Close()
	now := c.Now()
	if err := spool.Put(context.Background(), spoolEvent("evt_1", now, `{"amount":"1.00"}`)); err != nil {
		t.Fatal(err)
	}
	at.Set(testSealer(t, 2)) // the wrong key
	audits := &auditLog{}
	f := startDeliverer(t, spool, c, DeliveryConfig{URL: app.url(), Auditor: audits}, 4)
	eventually(t, "the dead letter", func() bool { return len(f.hooks.deadReasons()) == 1 })
	if r := f.hooks.deadReasons(); r[0] != DeadLetterUndecryptable {
		t.Fatalf("reason %v", r)
	}
	dl, _ := spool.DeadLetters(context.Background(), 10)
	if len(dl) != 1 || !strings.HasPrefix(dl[0].LastError, "undecryptable: sealed with key id") || !strings.Contains(dl[0].LastError, "not configured") {
		t.Fatalf("dead letters %+v", dl)
	}
	if got := audits.events(proxy.AuditDeadLetter); len(got) != 1 || got[0].Code != DeadLetterUndecryptable || got[0].EventID != "evt_1" {
		t.Fatalf("audit %+v", got)
	}
	if len(app.got) != 0 {
		t.Fatal("an undecryptable event was POSTed to the app")
	}
	at.Set(testSealer(t, 1)) // the key is back
	if _, err := f.d.Replay(context.Background(), "evt_1", "192.0.2.1"); err != nil {
		t.Fatal(err)
	}
	if d := app.next(t); d.body != `{"amount":"1.00"}` || d.header.Get(proxy.HeaderWebhookID) != "evt_1" {
		t.Fatalf("delivery after the key came back: %+v", d)
	}
	if got := audits.events(proxy.AuditReplay); len(got) != 1 || got[0].Remote != "192.0.2.1" {
		t.Fatalf("replay audit %+v", got)
	}
}

// With delivered_retention the delivered event stays in the history; a
// replay by reference sends it again with its original Webhook-Id; the
// purge drops it once retention passes.
func TestHistoryRetentionReplayAndPurge(t *testing.T) {
	c := clock.NewFake(time.Date(2026, 1, 15, 10, 0, 0, 0, time.UTC))
	app := newAppStandIn(t, c, nil)
	spool := storetest.NewMemorySpool()
	audits := &auditLog{}
	cfg := DeliveryConfig{URL: app.url(), DeliveredRetention: 7 * 24 * time.Hour, DeadLetterRetention: 30 * 24 * time.Hour, Auditor: audits}
	f := startDeliverer(t, spool, c, cfg, 4)
	ctx := context.Background()
	for _, id := range []string{"evt_1", "evt_2", "evt_3"} {
		ev := spoolEvent(id, c.Now(), `{"id":"`+id+`"}`)
		if id == "evt_3" {
			ev.Reference = "ORDER-evt_1" // a second event of the same payment
		}
		if err := spool.Put(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	f.d.Wake()
	for i := 0; i < 3; i++ {
		app.next(t)
	}
	eventually(t, "the history", func() bool {
		st, _ := spool.Stats(ctx)
		return st.Delivered == 3 && st.Pending == 0
	})
	if got := audits.events(proxy.AuditDelivery); len(got) != 3 || got[0].Outcome != OutcomeDelivered || got[0].Status != http.StatusNoContent {
		t.Fatalf("delivery audit %+v", got)
	}
	rep, err := f.d.ReplayMatching(ctx, store.EventQuery{Reference: "ORDER-evt_1"}, "198.51.100.7")
	if err != nil || rep.Matched != 2 || rep.Queued != 2 || rep.Skipped != 0 {
		t.Fatalf("replay: %+v %v", rep, err)
	}
	ids := map[string]bool{}
	for i := 0; i < 2; i++ {
		d := app.next(t)
		ids[d.header.Get(proxy.HeaderWebhookID)] = true
	}
	if !ids["evt_1"] || !ids["evt_3"] {
		t.Fatalf("replayed ids %v, want the originals evt_1 and evt_3", ids)
	}
	eventually(t, "the replayed events delivered again", func() bool {
		st, _ := spool.Stats(ctx)
		return st.Delivered == 3
	})
	// A replay of pending events skips them.
	if err := spool.Put(ctx, spoolEvent("evt_4", c.Now().Add(time.Hour), `{}`)); err != nil {
		t.Fatal(err)
	}
	_ = spool.Retry(ctx, "evt_4", 0, c.Now().Add(time.Hour), "")
	rep, err = f.d.ReplayMatching(ctx, store.EventQuery{Status: store.StatusPending}, "198.51.100.7")
	if err != nil || rep.Matched != 1 || rep.Skipped != 1 || rep.Queued != 0 {
		t.Fatalf("replay of pending: %+v %v", rep, err)
	}
	// Retention: nothing is purged before 7 days, everything delivered after.
	if n, err := f.d.Purge(ctx); err != nil || n != 0 {
		t.Fatalf("early purge: %d %v", n, err)
	}
	c.Advance(7*24*time.Hour + time.Minute)
	if n, err := f.d.Purge(ctx); err != nil || n != 3 {
		t.Fatalf("purge after retention: %d %v", n, err)
	}
	if got := audits.events(proxy.AuditPurge); len(got) != 1 || got[0].Delivered != 3 || got[0].Remote != "retention" {
		t.Fatalf("purge audit %+v", got)
	}
}

// Without retention a delivered event is removed at once, as before.
func TestNoRetentionRemovesDelivered(t *testing.T) {
	c := clock.NewFake(time.Time{})
	app := newAppStandIn(t, c, nil)
	spool := storetest.NewMemorySpool()
	f := startDeliverer(t, spool, c, DeliveryConfig{URL: app.url()}, 1)
	if err := spool.Put(context.Background(), spoolEvent("evt_1", c.Now(), `{}`)); err != nil {
		t.Fatal(err)
	}
	f.d.Wake()
	app.next(t)
	eventually(t, "completion", func() bool {
		st, _ := spool.Stats(context.Background())
		return st.Pending == 0
	})
	if st, _ := spool.Stats(context.Background()); st.Delivered != 0 {
		t.Fatalf("kept a delivered event without retention: %+v", st)
	}
}

// Every webhook's result goes to the audit trail: accepted with its event
// id, a duplicate, a refusal with its code; always with the sender's
// address, never the body.
func TestInboundAudits(t *testing.T) {
	audits := &auditLog{}
	f := newInboundFixture(t, func(c *Config) { c.Auditor = audits })
	body := envelope("data", seal(t, testWebhookKey, payloadJSON("QRPH_SUCCESS", "ORDER-9")))
	f.send(webhookRequest(body), allowedIP)
	f.send(webhookRequest(body), allowedIP)
	f.send(webhookRequest(envelope("data", seal(t, testUnknownKey, payloadJSON("QRPH_SUCCESS", "ORDER-9")))), allowedIP)
	f.send(webhookRequest(body), "198.51.100.1")
	acc := audits.events(proxy.AuditWebhookAccepted)
	if len(acc) != 1 || acc[0].Reference != "ORDER-9" || acc[0].Action != "QRPH_SUCCESS" || acc[0].EventID == "" || acc[0].Remote != allowedIP {
		t.Fatalf("accepted %+v", acc)
	}
	if dup := audits.events(proxy.AuditWebhookDuplicate); len(dup) != 1 || dup[0].Reference != "ORDER-9" || dup[0].EventID != "" {
		t.Fatalf("duplicate %+v", dup)
	}
	ref := audits.events(proxy.AuditWebhookRefused)
	if len(ref) != 2 || ref[0].Code != ResultDecryptFailed || ref[1].Code != ResultForbiddenIP || ref[1].Remote != "198.51.100.1" {
		t.Fatalf("refused %+v", ref)
	}
}
