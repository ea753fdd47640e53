package sandbox

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qrphgate/qrphgate/internal/testenv"
)

// callback is a webhook receiver that records what it gets and answers
// with the scripted statuses (200 once the script runs out).
type callback struct {
	srv *httptest.Server

	mu     sync.Mutex
	script []int
	got    []received
}

type received struct {
	header http.Header
	body   []byte
	remote string
}

func newCallback(t *testing.T, script ...int) *callback {
	c := &callback{script: script}
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		c.mu.Lock()
		c.got = append(c.got, received{header: r.Header.Clone(), body: b, remote: r.RemoteAddr})
		status := http.StatusOK
		if len(c.script) > 0 {
			status, c.script = c.script[0], c.script[1:]
		}
		c.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(c.srv.Close)
	return c
}

func (c *callback) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.got)
}

func (c *callback) request(i int) received {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.got[i]
}

// register registers a webhook through the API.
func (h *harness) register(action, url, activationCode string) string {
	h.t.Helper()
	b, _ := json.Marshal(map[string]string{"webhookAction": action, "callbackUrl": url})
	r, _ := http.NewRequest(http.MethodPost, h.srv.URL+"/v1/webhooks", bytes.NewReader(b))
	r.Header.Set("Content-Type", "application/json")
	r.SetBasicAuth(testSecret, "")
	if activationCode != "" {
		r.Header.Set("activation-code", activationCode)
	}
	resp, body := h.send(r)
	if resp.StatusCode != http.StatusCreated {
		h.t.Fatalf("register: %d %s", resp.StatusCode, body)
	}
	return decodeInto[WebhookView](h.t, body).ID
}

// simulate calls the simulate API.
func (h *harness) simulate(qrBody, useCase string) (*http.Response, []byte) {
	h.t.Helper()
	return h.api(http.MethodPost, "/v1/webhooks/qrph/simulate", map[string]string{"qrBody": qrBody, "useCase": useCase})
}

// openWebhook checks a delivery's envelope and decrypts its payload.
func (h *harness) openWebhook(r received) WebhookPayload {
	h.t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		h.t.Fatalf("delivery content type %q", ct)
	}
	var p WebhookPayload
	openStrict(h, r.body, "data", &p)
	return p
}

func TestSimulateSendsEncryptedWebhook(t *testing.T) {
	h := newHarness(t, nil)
	success := newCallback(t)
	declined := newCallback(t)
	h.register("QRPH_SUCCESS", success.srv.URL+"/hooks?token=secret-in-query", "MERCHANT_ABC_123")
	h.register("QRPH_DECLINED", declined.srv.URL, "")

	ans, png := h.createQR("500.00", "ORDER-12345")
	raw := decodeQRPNG(t, png)
	created := h.clk.Now()
	h.clk.Advance(2 * time.Minute)

	// The documented flow: the raw text decoded from the PNG.
	resp, body := h.simulate(raw, "SUCCESS")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("simulate: %d %s", resp.StatusCode, body)
	}
	if got := decodeInto[map[string]string](t, body); len(got) != 1 || got["id"] != ans.ID {
		t.Fatalf("simulate answer %s, want id %s", body, ans.ID)
	}
	waitFor(t, "the success webhook", func() bool { return success.count() == 1 })
	r := success.request(0)
	if code := r.header.Get("activation-code"); code != "MERCHANT_ABC_123" {
		t.Fatalf("activation-code header %q", code)
	}
	p := h.openWebhook(r)
	want := WebhookPayload{
		Action: "QRPH_SUCCESS", Status: "SUCCESS", TransactionID: ans.ID, ReferenceNumber: "ORDER-12345",
		Amount: 50000, Currency: "PHP", Timestamp: created.Add(2 * time.Minute).UTC().Format(time.RFC3339),
	}
	if p != want {
		t.Fatalf("payload %+v\nwant    %+v", p, want)
	}
	waitFor(t, "the delivery state", func() bool {
		d := h.sim.State().QRs[0].Events
		return len(d) == 1 && len(d[0].Deliveries) == 1 && d[0].Deliveries[0].State == DeliveryDelivered
	})
	st := h.sim.State().QRs[0]
	if st.Status != StatusPaid || st.Events[0].Deliveries[0].Attempts[0].Status != 200 {
		t.Fatalf("state after payment %+v", st)
	}
	if strings.Contains(st.Events[0].Deliveries[0].Callback, "secret-in-query") {
		t.Fatal("the page shows a callback's query string")
	}
	if declined.count() != 0 {
		t.Fatal("the QRPH_DECLINED webhook got a success event")
	}

	// Simulating by transaction id resends (a duplicate, as the provider
	// warns may happen); declining a paid QR is refused.
	resp, body = h.simulate(ans.ID, "SUCCESS")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("simulate by id: %d %s", resp.StatusCode, body)
	}
	waitFor(t, "the duplicate", func() bool { return success.count() == 2 })
	if dup := h.openWebhook(success.request(1)); dup.TransactionID != ans.ID || dup.Action != "QRPH_SUCCESS" {
		t.Fatalf("duplicate %+v", dup)
	}
	resp, body = h.simulate(raw, "DECLINED")
	providerError(t, resp, body, http.StatusConflict, CodeQRSettled)
}

func TestSimulateDeclinedVariants(t *testing.T) {
	h := newHarness(t, nil)
	declined := newCallback(t)
	h.register("QRPH_DECLINED", declined.srv.URL, "")
	for i, useCase := range []string{"DECLINED", "MISSING_DESTINATION_ACCOUNT", "MISSING_PARTNER_REVENUE_ACCOUNT", "UNSUPPORTED_TRANSFER_TYPE"} {
		ans, _ := h.createQR("98.00", "REF-"+useCase[:3])
		resp, body := h.simulate(ans.ID, useCase)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %s", useCase, resp.StatusCode, body)
		}
		waitFor(t, useCase, func() bool { return declined.count() == i+1 })
		p := h.openWebhook(declined.request(i))
		if p.Action != "QRPH_DECLINED" || p.Status != "DECLINED" || p.Reason != useCase || p.Amount != 9800 || p.TransactionID != ans.ID {
			t.Fatalf("%s: payload %+v", useCase, p)
		}
	}
}

func TestSimulateErrors(t *testing.T) {
	h := newHarness(t, nil)
	ans, png := h.createQR("500.00", "ORDER-1")
	for _, tc := range []struct {
		name, qrBody, useCase string
		status                int
		code, msg             string
	}{
		{"missing useCase", ans.ID, "", 400, CodeInvalidUseCase, "useCase must be one of"},
		{"unknown useCase", ans.ID, "REFUNDED", 400, CodeInvalidUseCase, "SUCCESS"},
		{"missing qrBody", "", "SUCCESS", 400, CodeBadRequestBody, "qrBody is required"},
		{"base64 PNG instead of the text", base64.StdEncoding.EncodeToString(png), "SUCCESS", 400, CodeBadRequestBody, "decoded from the QR image"},
		{"QR Ph text with a wrong CRC", providerExample[:len(providerExample)-1] + "1", "SUCCESS", 400, CodeBadRequestBody, "wrong CRC"},
		{"QR made elsewhere", providerExample, "SUCCESS", 404, CodeQRNotFound, "No QR"},
		{"unknown transaction id", "00000000-0000-4000-8000-000000000000", "SUCCESS", 404, CodeQRNotFound, "No QR"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := h.simulate(tc.qrBody, tc.useCase)
			if pe := providerError(t, resp, body, tc.status, tc.code); !strings.Contains(pe.Error, tc.msg) {
				t.Fatalf("message %q lacks %q", pe.Error, tc.msg)
			}
		})
	}
	resp, body := h.request(http.MethodPost, "/v1/webhooks/qrph/simulate", "application/json", `{"qrBody":"x","useCase":"SUCCESS","amount":"1.00"}`, true)
	providerError(t, resp, body, http.StatusBadRequest, CodeBadRequestBody)
	if got := h.sim.State().QRs[0].Status; got != StatusPending {
		t.Fatalf("a refused simulation changed the QR to %s", got)
	}

	// After the 15-minute validity the QR cannot be paid.
	h.clk.Advance(15 * time.Minute)
	resp, body = h.simulate(ans.ID, "SUCCESS")
	providerError(t, resp, body, http.StatusBadRequest, CodeQRExpired)
	if got := h.sim.State().QRs[0].Status; got != StatusExpired {
		t.Fatalf("status %s, want EXPIRED", got)
	}

	// Simulate accepts the sealed form as well.
	ans2, _ := h.createQR("1.00", "ORDER-2")
	pt, _ := json.Marshal(map[string]string{"qrBody": ans2.ID, "useCase": "SUCCESS"})
	resp, body = h.request(http.MethodPost, "/v1/webhooks/qrph/simulate", "application/json", h.seal(string(pt)), true)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), ans2.ID) {
		t.Fatalf("sealed simulate: %d %s", resp.StatusCode, body)
	}
}

// TestWebhookRetrySchedule runs the provider's schedule on a fake clock:
// four attempts, 15 minutes apart, and nothing after the fourth.
func TestWebhookRetrySchedule(t *testing.T) {
	h := newHarness(t, nil)
	cb := newCallback(t, 500, 500, 500, 500, 500)
	h.register("QRPH_SUCCESS", cb.srv.URL, "CODE-1")
	ans, _ := h.createQR("500.00", "ORDER-1")
	start := h.clk.Now()
	if resp, body := h.simulate(ans.ID, "SUCCESS"); resp.StatusCode != http.StatusOK {
		t.Fatalf("simulate: %d %s", resp.StatusCode, body)
	}
	for attempt := 1; attempt <= 4; attempt++ {
		waitFor(t, "attempt", func() bool { return cb.count() == attempt })
		if attempt == 4 {
			break
		}
		if !h.clk.WaitForTimers(1, 5*time.Second) {
			t.Fatalf("no retry scheduled after attempt %d", attempt)
		}
		h.clk.Advance(15*time.Minute - time.Second)
		// The retry's timer must still be waiting: a timer due earlier would
		// have fired (and left the fake clock) inside Advance.
		if h.clk.Timers() != 1 || cb.count() != attempt {
			t.Fatalf("attempt %d came before 15 minutes", attempt+1)
		}
		h.clk.Advance(time.Second)
	}
	waitFor(t, "the delivery to fail", func() bool {
		return h.sim.State().QRs[0].Events[0].Deliveries[0].State == DeliveryFailed
	})
	// Nothing is scheduled after the fourth attempt.
	if n := h.clk.Timers(); n != 0 {
		t.Fatalf("%d timers after the last attempt, want none", n)
	}
	h.clk.Advance(24 * time.Hour)
	if n := cb.count(); n != 4 {
		t.Fatalf("%d attempts, want 4", n)
	}
	d := h.sim.State().QRs[0].Events[0].Deliveries[0]
	for i, a := range d.Attempts {
		if want := start.Add(time.Duration(i) * 15 * time.Minute); !a.At.Equal(want) || a.Status != 500 {
			t.Errorf("attempt %d at %v status %d, want %v 500", i+1, a.At, a.Status, want)
		}
	}
	for i := range 4 {
		r := cb.request(i)
		if r.header.Get("activation-code") != "CODE-1" || !bytes.Equal(r.body, cb.request(0).body) {
			t.Fatalf("attempt %d differs from the first: %v", i+1, r.header)
		}
	}
	if s := h.sim.Status(); s.DeliveriesInFlight != 0 || s.Paid != 1 {
		t.Fatalf("status %+v", s)
	}
}

func TestWebhookRetryEndsOnSuccessAndOnDisable(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.RetryIntervals = []time.Duration{time.Minute, 2 * time.Minute, 3 * time.Minute} })
	cb := newCallback(t, 503, 502)
	h.register("QRPH_SUCCESS", cb.srv.URL, "")
	ans, _ := h.createQR("500.00", "ORDER-1")
	h.simulate(ans.ID, "SUCCESS")
	waitFor(t, "attempt 1", func() bool { return cb.count() == 1 })
	h.clk.WaitForTimers(1, 5*time.Second)
	h.clk.Advance(time.Minute)
	waitFor(t, "attempt 2", func() bool { return cb.count() == 2 })
	h.clk.WaitForTimers(1, 5*time.Second)
	h.clk.Advance(2 * time.Minute)
	waitFor(t, "delivered", func() bool {
		return h.sim.State().QRs[0].Events[0].Deliveries[0].State == DeliveryDelivered
	})
	if cb.count() != 3 || h.clk.Timers() != 0 {
		t.Fatalf("%d attempts, %d timers left", cb.count(), h.clk.Timers())
	}

	// A webhook disabled while a retry waits gets no more attempts.
	failing := newCallback(t, 500, 500, 500, 500)
	id := h.register("QRPH_DECLINED", failing.srv.URL, "")
	ans2, _ := h.createQR("1.00", "ORDER-2")
	h.simulate(ans2.ID, "DECLINED")
	waitFor(t, "first attempt", func() bool { return failing.count() == 1 })
	h.clk.WaitForTimers(1, 5*time.Second)
	if resp, body := h.api(http.MethodPut, "/v1/webhooks/"+id, map[string]string{"webhookStatus": "DISABLED"}); resp.StatusCode != 200 {
		t.Fatalf("disable: %d %s", resp.StatusCode, body)
	}
	h.clk.Advance(time.Hour)
	waitFor(t, "cancelled", func() bool {
		return h.sim.State().QRs[0].Events[0].Deliveries[0].State == DeliveryCancelled
	})
	if failing.count() != 1 {
		t.Fatalf("%d attempts to a disabled webhook", failing.count())
	}
}

// TestStoreCloseStopsDeliveries: a retry waiting on the clock ends when the
// Store closes, and Close waits for it.
func TestStoreCloseStopsDeliveries(t *testing.T) {
	h := newHarness(t, nil)
	cb := newCallback(t, 500, 500, 500, 500)
	h.register("QRPH_SUCCESS", cb.srv.URL, "")
	ans, _ := h.createQR("500.00", "ORDER-1")
	h.simulate(ans.ID, "SUCCESS")
	waitFor(t, "first attempt", func() bool { return cb.count() == 1 })
	h.clk.WaitForTimers(1, 5*time.Second)
	done := make(chan struct{})
	go func() { _ = h.store.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return: a delivery goroutine ignores the context")
	}
	if st := h.sim.State().QRs[0].Events[0].Deliveries[0].State; st != DeliveryCancelled {
		t.Fatalf("state %s", st)
	}
	resp, body := h.simulate(ans.ID, "SUCCESS")
	providerError(t, resp, body, http.StatusServiceUnavailable, CodeBusy)
}

// TestWebhookSource sends deliveries from the configured local address.
func TestWebhookSource(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.WebhookSource = "127.0.0.2" })
	if h.sim.WebhookSource() != "127.0.0.2" {
		testenv.Missing(t, "127.0.0.2 cannot be bound on this machine (macOS); Linux binds all of 127.0.0.0/8")
	}
	cb := newCallback(t)
	h.register("QRPH_SUCCESS", cb.srv.URL, "")
	ans, _ := h.createQR("500.00", "ORDER-1")
	h.simulate(ans.ID, "SUCCESS")
	waitFor(t, "delivery", func() bool { return cb.count() == 1 })
	if remote := cb.request(0).remote; !strings.HasPrefix(remote, "127.0.0.2:") {
		t.Fatalf("delivery came from %s", remote)
	}
	if _, err := New(Config{SecretKey: testSecret, EncryptionKey: h.key, WebhookSource: "not-an-ip"}, h.store); err == nil {
		t.Fatal("a non-IP webhook_source was accepted")
	}
	// An address this machine does not have is a warning, not an error.
	sim, err := New(Config{SecretKey: testSecret, EncryptionKey: h.key, WebhookSource: "192.0.2.1"}, h.store)
	if err != nil || sim.WebhookSource() != "" {
		t.Fatalf("unbindable source: %v %q", err, sim.WebhookSource())
	}
}
