package caddymodule

import (
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/qrphgate/qrphgate/internal/e2e"
	"github.com/qrphgate/qrphgate/internal/fakemodulus"
	"github.com/qrphgate/qrphgate/internal/redistest"
)

// Two modulus_webhook handlers (two replicas, each with its own spool file)
// naming one Redis `store` share the rate-limit counts. When that Redis
// stops, webhooks are accepted without a limit (never refused for it),
// counted in qrphgate_ratelimit_fail_open_total; once it is back the limits
// apply again.
func TestWebhookRateLimitSharedAndFailsOpen(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	app := newTestApp(t)
	replica := func() *Webhook {
		h := testWebhook(t, app.srv.URL)
		h.Store = srv.URL()
		h.RateLimitPerIP = "2/1h"
		provision(t, h, newCaddyContext(t))
		return h
	}
	a, b := replica(), replica()
	if a.Spool == b.Spool || filepath.Dir(a.Spool) == filepath.Dir(b.Spool) {
		t.Fatal("the replicas share a spool file")
	}
	seq := 0
	send := func(h *Webhook) int {
		seq++
		body := sealWebhook(t, `{"action":"QRPH_SUCCESS","referenceNumber":"RL-`+strconv.Itoa(seq)+`"}`)
		return serve(t, h, caddyRequest(body, "203.0.113.5", false, nil)).Code
	}
	if send(a) != 200 || send(b) != 200 {
		t.Fatal("the first two webhooks of 2/1h")
	}
	if code := send(a); code != http.StatusTooManyRequests {
		t.Fatalf("a third webhook, on the other replica: %d; the replicas do not share the count", code)
	}

	failedOpen := metricValue(t, `qrphgate_ratelimit_fail_open_total{limiter="webhook"}`)
	srv.Stop()
	for i := 0; i < 3; i++ {
		if code := send(a); code != 200 {
			t.Fatalf("webhook %d with the limiter's Redis down: %d, want accepted", i+1, code)
		}
	}
	if got := metricValue(t, `qrphgate_ratelimit_fail_open_total{limiter="webhook"}`); got < failedOpen+3 {
		t.Fatalf("qrphgate_ratelimit_fail_open_total went from %v to %v for 3 webhooks", failedOpen, got)
	}
	srv.Restart()
	// The restarted server kept nothing (no persistence): the window starts
	// over, and its limit applies again.
	e2e.WaitFor(t, 20*time.Second, "the limit to apply again", func() bool { return send(b) == http.StatusTooManyRequests })
}

// merchant_rate_limit on a Redis store caps a merchant across replicas:
// over it, 429 merchant_rate_limited, and nothing reaches the provider.
func TestMerchantRateLimitSharedByReplicas(t *testing.T) {
	setFakeEnv(t)
	srv := redistest.Start(t, redistest.Options{})
	fake := fakemodulus.New(t, fakemodulus.Options{SecretKey: fakeSandboxKey, EncryptionKey: []byte(fakeEncryptionKey)})
	replica := func() *API {
		a := sandboxAPI(fake.URL)
		a.Store = srv.URL()
		a.MerchantRateLimit = "2/1h"
		if err := a.Provision(testContext(t)); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = a.Cleanup() })
		return a
	}
	a, b := replica(), replica()
	if w := createVia(a, "MRL-1"); w.Code != 200 {
		t.Fatalf("first: %d %s", w.Code, w.Body)
	}
	if w := createVia(b, "MRL-2"); w.Code != 200 {
		t.Fatalf("second, on the other replica: %d %s", w.Code, w.Body)
	}
	calls := len(fake.CallsTo("/v1/pay/qr"))
	w := createVia(a, "MRL-3")
	if w.Code != http.StatusTooManyRequests || !strings.Contains(w.Body.String(), `"merchant_rate_limited"`) || w.Header().Get("Retry-After") == "" {
		t.Fatalf("third of 2/1h across replicas: %d %v %s", w.Code, w.Header(), w.Body)
	}
	if n := len(fake.CallsTo("/v1/pay/qr")); n != calls {
		t.Fatalf("a capped call reached the provider (%d calls, was %d)", n, calls)
	}
}
