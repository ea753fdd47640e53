package caddymodule

import (
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/qrphgate/qrphgate/internal/e2e"
)

// Obviously fake signing secrets for the rotation: the one in use and the
// one replacing it.
const (
	rotationOldSecret = "whsec_VEVTVC1PTkxZLW9sZC1zaWduaW5nLWtleS0wMDAwMDAwMA=="
	rotationNewSecret = "whsec_VEVTVC1PTkxZLW5ldy1zaWduaW5nLWtleS0wMDAwMDAwMA=="
)

// TestWebhookSigningSecretRotation follows the procedure of
// docs/webhooks.md through reloads of one spool's worker: the old secret
// alone, then both (every delivery verifies with either, with the official
// Go Standard Webhooks library), then the new one alone.
func TestWebhookSigningSecretRotation(t *testing.T) {
	app := newTestApp(t)
	t.Setenv(testWebhookKeyEnv, testWebhookKey)
	t.Setenv("QRPHGATE_TEST_SIGN_OLD", rotationOldSecret)
	t.Setenv("QRPHGATE_TEST_SIGN_NEW", rotationNewSecret)
	spool := filepath.Join(t.TempDir(), "webhooks.spool")
	config := func(secrets ...string) *Webhook {
		src := "modulus_webhook {\n\tdecryption_key {env." + testWebhookKeyEnv + "}\n\tallow_ips 203.0.113.0/24\n\tforward_to " +
			app.srv.URL + "/payments\n\tspool " + spool + "\n"
		for _, s := range secrets {
			src += "\tsign_secret {env." + s + "}\n"
		}
		h := new(Webhook)
		if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(src + "}")); err != nil {
			t.Fatal(err)
		}
		return h
	}
	verifiers := map[string]*standardwebhooks.Webhook{}
	for name, s := range map[string]string{"old": rotationOldSecret, "new": rotationNewSecret} {
		wh, err := standardwebhooks.NewWebhook(s)
		if err != nil {
			t.Fatal(err)
		}
		verifiers[name] = wh
	}
	// deliver sends one webhook through h and reports which secrets verify
	// the delivery the app gets.
	n := 0
	deliver := func(h *Webhook) map[string]bool {
		t.Helper()
		n++
		before := app.deliveries()
		rec := serve(t, h, caddyRequest(sealWebhook(t, fmt.Sprintf(`{"action":"QRPH_SUCCESS","referenceNumber":"ROT-%d"}`, n)), "203.0.113.9", false, nil))
		if rec.Code != http.StatusOK {
			t.Fatalf("webhook %d: %d %s", n, rec.Code, rec.Body)
		}
		e2e.WaitFor(t, 15*time.Second, "the delivery", func() bool { return app.deliveries() == before+1 })
		app.mu.Lock()
		header, body := app.got[len(app.got)-1], app.bodies[len(app.bodies)-1]
		app.mu.Unlock()
		ok := map[string]bool{}
		for name, wh := range verifiers {
			err := wh.Verify([]byte(body), header)
			if err != nil && !errors.Is(err, standardwebhooks.ErrNoMatchingSignature) {
				t.Fatalf("verifying with the %s secret: %v", name, err)
			}
			ok[name] = err == nil
		}
		return ok
	}
	signing := func(h *Webhook) int {
		return status.snapshot()["inbound"][h.worker.name].(webhookStatus).SigningSecrets
	}

	// 1. In use: the old secret.
	a := config("QRPHGATE_TEST_SIGN_OLD")
	provision(t, a, newCaddyContext(t))
	if got := deliver(a); !got["old"] || got["new"] || signing(a) != 1 {
		t.Fatalf("old secret alone: verified %v, %d secrets", got, signing(a))
	}
	// 2. Reload with both: apps on either secret accept every delivery.
	b := config("QRPHGATE_TEST_SIGN_OLD", "QRPHGATE_TEST_SIGN_NEW")
	if b.SignSecret != "" || len(b.SignSecrets) != 2 {
		t.Fatalf("two sign_secret lines: %q %v", b.SignSecret, b.SignSecrets)
	}
	provision(t, b, newCaddyContext(t))
	if err := a.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if got := deliver(b); !got["old"] || !got["new"] || signing(b) != 2 {
		t.Fatalf("during the rotation: verified %v, %d secrets", got, signing(b))
	}
	app.mu.Lock()
	sig := app.got[len(app.got)-1].Get("Webhook-Signature")
	app.mu.Unlock()
	if len(strings.Split(sig, " ")) != 2 {
		t.Fatalf("Webhook-Signature %q: want two entries", sig)
	}
	// 3. Reload with the new secret alone, once every app verifies with it.
	c := config("QRPHGATE_TEST_SIGN_NEW")
	provision(t, c, newCaddyContext(t))
	if err := b.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if got := deliver(c); got["old"] || !got["new"] || signing(c) != 1 {
		t.Fatalf("new secret alone: verified %v, %d secrets", got, signing(c))
	}
}

// An app's 410 Gone dead-letters the event at once through the adapter:
// the admin API lists it with that reason, the metric counts it by reason.
func TestWebhookGoneDeadLetters(t *testing.T) {
	app := newTestApp(t)
	app.setStatus(http.StatusGone)
	h := testWebhook(t, app.srv.URL)
	provision(t, h, newCaddyContext(t))
	series := metricDeadLettered + `{reason="gone"}`
	before := max(metricValue(t, series), 0)
	rec := serve(t, h, caddyRequest(sealWebhook(t, `{"action":"QRPH_SUCCESS","referenceNumber":"ORDER-GONE-1"}`), "203.0.113.5", false, nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d", rec.Code)
	}
	mux := adminMux()
	e2e.WaitFor(t, 15*time.Second, "the dead letter", func() bool {
		_, body := adminCall(t, mux, http.MethodGet, "/modulus/dead-letters?spool="+h.worker.name)
		return strings.Contains(body, "ORDER-GONE-1")
	})
	_, body := adminCall(t, mux, http.MethodGet, "/modulus/dead-letters?spool="+h.worker.name)
	if !strings.Contains(body, `"last_error": "HTTP 410 Gone: the app refused the event; dead-lettered without retrying"`) || !strings.Contains(body, `"attempts": 1`) {
		t.Fatalf("dead letters %s", body)
	}
	if got := metricValue(t, series); got != before+1 {
		t.Fatalf("%s = %v, want %v", series, got, before+1)
	}
	if app.deliveries() != 1 {
		t.Fatalf("the app got %d attempts, want 1", app.deliveries())
	}
}
