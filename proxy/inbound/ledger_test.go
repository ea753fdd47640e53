package inbound

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qrphgate/qrphgate/crypto"
	"github.com/qrphgate/qrphgate/internal/apispec"
	"github.com/qrphgate/qrphgate/internal/clock"
	"github.com/qrphgate/qrphgate/store/storetest"
)

// fakeLedger records what it is told and answers flags (or an error).
type fakeLedger struct {
	mu      sync.Mutex
	results []PaymentResult
	flags   []string
	err     error
}

func (f *fakeLedger) Reconcile(_ context.Context, r PaymentResult) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.results = append(f.results, r)
	return f.flags, f.err
}

// An accepted webhook is reconciled before it is spooled: the ledger gets
// what the payload says, and its flags travel with the event. A duplicate
// is not reconciled again.
func TestAcceptedWebhookIsReconciled(t *testing.T) {
	led := &fakeLedger{flags: []string{"amount_mismatch", "late_result"}}
	f := newInboundFixture(t, func(c *Config) { c.Ledger = led })
	body := `{"action":"QRPH_SUCCESS","transactionId":"tx-1","referenceNumber":"ORDER-1","amount":9800,"currency":"PHP"}`
	req := webhookRequest(envelope("data", seal(t, testWebhookKey, body)))
	req.Header.Set("Activation-Code", "TEST-0000-0000-0001")
	if a := f.send(req, allowedIP); a.status != 200 {
		t.Fatalf("answer %+v", a)
	}
	evs, _ := f.spool.Claim(context.Background(), f.clock.Now(), time.Minute, 10)
	if len(evs) != 1 || evs[0].Reconciliation != "amount_mismatch,late_result" || evs[0].Source != "" {
		t.Fatalf("spooled %+v", evs)
	}
	want := PaymentResult{EventID: evs[0].ID, ActivationCode: "TEST-0000-0000-0001", Action: "QRPH_SUCCESS", TransactionID: "tx-1",
		Reference: "ORDER-1", Amount: 9800, HasAmount: true, Currency: "PHP", ReceivedAt: f.clock.Now()}
	if len(led.results) != 1 || fmt.Sprintf("%+v", led.results[0]) != fmt.Sprintf("%+v", want) {
		t.Fatalf("ledger told %+v\nwant %+v", led.results, want)
	}
	req = webhookRequest(envelope("data", seal(t, testWebhookKey, body)))
	req.Header.Set("Activation-Code", "TEST-0000-0000-0001")
	if a := f.send(req, allowedIP); a.status != 200 || len(led.results) != 1 {
		t.Fatalf("duplicate: %+v, ledger told %d times", a, len(led.results))
	}
}

// A ledger that fails changes nothing for the webhook: accepted, spooled,
// no flags.
func TestLedgerFailureDoesNotRefuseTheWebhook(t *testing.T) {
	led := &fakeLedger{flags: []string{"amount_mismatch"}, err: errors.New("store unavailable")}
	f := newInboundFixture(t, func(c *Config) { c.Ledger = led })
	if a := f.send(webhookRequest(envelope("data", seal(t, testWebhookKey, payloadJSON("QRPH_SUCCESS", "ORDER-1")))), allowedIP); a.status != 200 {
		t.Fatalf("answer %+v", a)
	}
	evs, _ := f.spool.Claim(context.Background(), f.clock.Now(), time.Minute, 10)
	if len(evs) != 1 || evs[0].Reconciliation != "amount_mismatch" {
		t.Fatalf("spooled %+v", evs)
	}
}

// What the ledger is told, for the payload shapes the provider's pages
// show and for members of unexpected types (left out, never an error).
func TestResultOf(t *testing.T) {
	for _, tc := range []struct {
		payload string
		want    string
	}{
		{`{"action":"QRPH_SUCCESS","referenceNumber":"R1","amount":100000,"currency":"PHP"}`, "R1 100000 true PHP"},
		{`{"status":"SUCCESS","transactionId":"tx","merchantReferenceNumber":"R2","amount":"500.00","currency":"USD"}`, "R2 50000 true USD"},
		{`{"action":"QRPH_SUCCESS","transactionId":"tx"}`, " 0 false "},
		{`{"action":"QRPH_SUCCESS","referenceNumber":"R","amount":500.5,"currency":"PESO"}`, "R 0 false "},
		{`{"action":"QRPH_SUCCESS","referenceNumber":"R","amount":"5","currency":7}`, "R 0 false "},
		{`{"action":"QRPH_SUCCESS","referenceNumber":"R","Amount":100,"CURRENCY":"PHP"}`, "R 0 false "},
		{`{"action":"QRPH_SUCCESS","referenceNumber":"R","amount":99999999999999999999}`, "R 0 false "},
		{`{"action":"QRPH_SUCCESS","referenceNumber":"R","amount":1,"currency":"\u20ac"}`, "R 1 true "},
		{`{"action":"QRPH_SUCCESS","referenceNumber":"R","currency":"php"}`, "R 0 false php"},
		// The reference follows the rule of every payload text, whichever
		// member it comes from: bounded, no control characters or line
		// separators (an integer referenceNumber passes ParsePayload and
		// leaves merchantReferenceNumber to resultOf alone).
		{`{"action":"QRPH_SUCCESS","referenceNumber":7,"merchantReferenceNumber":"R3"}`, "R3 0 false "},
		{`{"action":"QRPH_SUCCESS","referenceNumber":7,"merchantReferenceNumber":"R\u0085forged log line"}`, " 0 false "},
		{`{"action":"QRPH_SUCCESS","referenceNumber":7,"merchantReferenceNumber":"R\u2028x"}`, " 0 false "},
		{`{"action":"QRPH_SUCCESS","referenceNumber":7,"merchantReferenceNumber":"R\tx"}`, " 0 false "},
		{`{"action":"QRPH_SUCCESS","referenceNumber":7,"merchantReferenceNumber":"` + strings.Repeat("r", 129) + `"}`, " 0 false "},
	} {
		p, err := ParsePayload([]byte(tc.payload), DefaultActionFields, DefaultReferenceFields)
		if err != nil {
			t.Fatalf("%s: %v", tc.payload, err)
		}
		r := resultOf([]byte(tc.payload), p)
		if got := fmt.Sprint(r.Reference, " ", r.Amount, " ", r.HasAmount, " ", r.Currency); got != tc.want {
			t.Fatalf("%s: %q, want %q", tc.payload, got, tc.want)
		}
	}
}

// Delivery headers: a provider's event says Webhook-Source: modulus and
// carries its flags; a gateway event says qrphgate, is signed like every
// other, and has a Webhook-Id derived from its key, so emitting it again
// while it is queued queues nothing.
func TestSourceAndReconciliationHeaders(t *testing.T) {
	c := clock.NewFake(time.Date(2026, 1, 15, 10, 30, 0, 0, time.UTC))
	app := newAppStandIn(t, c, nil)
	keyBytes := []byte("TEST-ONLY-fake-signing-key-24b!!")
	signer, err := crypto.NewWebhookSigner("sign_secret", "whsec_"+base64.StdEncoding.EncodeToString(keyBytes))
	if err != nil {
		t.Fatal(err)
	}
	spool := storetest.NewMemorySpool()
	ev := spoolEvent("evt_0000000000000000000000000R", c.Now(), `{"action":"QRPH_SUCCESS"}`)
	ev.Reconciliation = "amount_mismatch,currency_mismatch"
	_ = spool.Put(context.Background(), ev)
	// The event is queued before the worker starts, so both are queued
	// before either is delivered.
	nd := NewDeliverer(spool, DelivererOptions{Clock: c})
	at := c.Now().Add(-time.Minute)
	ge := GatewayEvent{Key: "expired:tx-1", At: at, Action: "QRPH_EXPIRED", Reference: "ORDER-1", Body: []byte(`{"action":"QRPH_EXPIRED"}`)}
	id1, err := nd.Emit(context.Background(), ge)
	if err != nil {
		t.Fatal(err)
	}
	id2, err := nd.Emit(context.Background(), ge)
	if err != nil || id2 != id1 || id1 != GatewayEventID(at, "expired:tx-1") || !strings.HasPrefix(id1, "evt_") || len(id1) != 30 {
		t.Fatalf("ids %q %q %v", id1, id2, err)
	}
	if GatewayEventID(at, "expired:tx-2") == id1 || GatewayEventID(at.Add(time.Millisecond), "expired:tx-1") == id1 {
		t.Fatal("gateway event ids do not depend on the key and the time")
	}
	startDeliverer(t, spool, c, DeliveryConfig{URL: app.url(), Signer: signer}, 1)
	got := map[string]delivery{}
	for i := 0; i < 2; i++ {
		d := app.next(t)
		got[d.header.Get("Webhook-Id")] = d
	}
	eventually(t, "both completed", func() bool { return pendingCount(t, spool) == 0 })
	prov, gw := got[ev.ID], got[id1]
	if prov.header.Get("Webhook-Source") != "modulus" || prov.header.Get("Modulus-Reconciliation") != "amount_mismatch,currency_mismatch" {
		t.Fatalf("provider event headers %v", prov.header)
	}
	if gw.header.Get("Webhook-Source") != "qrphgate" || gw.header.Get("Modulus-Reconciliation") != "" || gw.body != `{"action":"QRPH_EXPIRED"}` {
		t.Fatalf("gateway event %v %s", gw.header, gw.body)
	}
	mac := hmac.New(sha256.New, keyBytes)
	mac.Write([]byte(id1 + "." + gw.header.Get("Webhook-Timestamp") + "." + gw.body))
	if want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil)); gw.header.Get("Webhook-Signature") != want {
		t.Fatalf("gateway event signature %q, want %q", gw.header.Get("Webhook-Signature"), want)
	}
	if len(got) != 2 {
		t.Fatalf("deliveries %d", len(got))
	}
	// Both, flags and gateway event included, are deliveries as
	// proxy/openapi.json describes them.
	spec := apispec.Load(t)
	for _, d := range []delivery{prov, gw} {
		req := httptest.NewRequest("POST", "/payments/modulus", strings.NewReader(d.body))
		req.Header = d.header.Clone()
		if err := spec.CheckDelivery(req, []byte(d.body)); err != nil {
			t.Errorf("the delivery does not match proxy/openapi.json: %v\n%v", err, d.header)
		}
	}
}
