package sandbox

import (
	"net/http"
	"testing"
	"time"

	"github.com/qrphgate/qrphgate/policy"
)

func TestRateLimit(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.RateLimit = policy.RateLimit{Requests: 3, Period: time.Minute} })
	list := func() (*http.Response, []byte) { return h.api(http.MethodGet, "/v1/webhooks", nil) }
	for i := range 3 {
		if resp, body := list(); resp.StatusCode != http.StatusOK {
			t.Fatalf("call %d: %d %s", i+1, resp.StatusCode, body)
		}
		h.clk.Advance(10 * time.Second)
	}
	// At t=30s the window holds calls at 0, 10 and 20 s: the first leaves at 60 s.
	resp, body := list()
	providerError(t, resp, body, http.StatusTooManyRequests, CodeRateLimited)
	if ra := resp.Header.Get("Retry-After"); ra != "30" {
		t.Fatalf("Retry-After %q, want 30", ra)
	}
	// Unauthenticated calls count against the same window, before auth.
	resp, body = h.request(http.MethodGet, "/v1/webhooks", "", "", false)
	providerError(t, resp, body, http.StatusTooManyRequests, CodeRateLimited)

	// The QR API has its own window.
	h.createQR("1.00", "ORDER-1")

	h.clk.Advance(30 * time.Second)
	if resp, body := list(); resp.StatusCode != http.StatusOK {
		t.Fatalf("after the first call left the window: %d %s", resp.StatusCode, body)
	}
	resp, body = list()
	providerError(t, resp, body, http.StatusTooManyRequests, CodeRateLimited)
	if ra := resp.Header.Get("Retry-After"); ra != "10" {
		t.Fatalf("Retry-After %q, want 10", ra)
	}
	if s := h.sim.Status(); s.WebhooksAPIUsed != 3 || s.QRAPIUsed != 1 || s.RateLimit != "3/1m" {
		t.Fatalf("status %+v", s)
	}
	// /ping and the page are not limited.
	for range 5 {
		if resp, _ := h.request(http.MethodGet, "/ping", "", "", false); resp.StatusCode != 200 {
			t.Fatalf("ping limited: %d", resp.StatusCode)
		}
	}
}

func TestErrorRate(t *testing.T) {
	roll := 0.5
	h := newHarness(t, func(c *Config) { c.ErrorRate = 0.4; c.Random = func() float64 { return roll } })
	h.createQR("1.00", "ORDER-1") // 0.5 >= 0.4: no fault
	roll = 0.1
	pt := `{"activationCode":"` + testMerchant + `","currency":"PHP","amount":"1.00","merchantReferenceNumber":"ORDER-2"}`
	resp, body := h.request(http.MethodPost, "/v1/pay/qr", "application/json", h.seal(pt), true)
	providerError(t, resp, body, http.StatusInternalServerError, CodeSimulatedFault)
	resp, body = h.request(http.MethodGet, "/ping", "", "", false)
	providerError(t, resp, body, http.StatusInternalServerError, CodeSimulatedFault)
	if n := len(h.sim.State().QRs); n != 1 {
		t.Fatalf("%d QRs: a simulated fault created one", n)
	}
	if _, err := New(Config{SecretKey: testSecret, EncryptionKey: h.key, ErrorRate: 1.5}, h.store); err == nil {
		t.Fatal("error_rate 1.5 accepted")
	}
}

func TestLatency(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Latency = 2 * time.Second })
	done := make(chan int, 1)
	go func() {
		resp, err := http.Get(h.srv.URL + "/ping")
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	if !h.clk.WaitForTimers(1, 5*time.Second) {
		t.Fatal("the request did not wait on the clock")
	}
	select {
	case <-done:
		t.Fatal("answered before the latency passed")
	case <-time.After(20 * time.Millisecond):
	}
	h.clk.Advance(2 * time.Second)
	select {
	case code := <-done:
		if code != http.StatusOK {
			t.Fatalf("status %d", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no answer after the latency")
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	h := newHarness(t, nil)
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"live key", Config{SecretKey: "sk_live_FAKE-key", EncryptionKey: h.key}, "production key"},
		{"no secret key", Config{EncryptionKey: h.key}, "secret_key is empty"},
		{"no encryption key", Config{SecretKey: testSecret}, "encryption_key is required"},
		{"bad activation code", Config{SecretKey: testSecret, EncryptionKey: h.key, ActivationCodes: []string{"MERCHANT_1"}}, "activation_codes[0]"},
		{"zero retry interval", Config{SecretKey: testSecret, EncryptionKey: h.key, RetryIntervals: []time.Duration{0}}, "retry_intervals"},
		{"negative latency", Config{SecretKey: testSecret, EncryptionKey: h.key, Latency: -1}, "latency"},
		{"bad inbox secret", Config{SecretKey: testSecret, EncryptionKey: h.key, InboxSignSecret: "whsec_!!"}, "inbox_sign_secret"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg, h.store)
			if err == nil || !contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if contains(err.Error(), "FAKE-key") {
				t.Fatalf("error reveals the key: %v", err)
			}
		})
	}
	if _, err := New(Config{SecretKey: testSecret, EncryptionKey: h.key}, nil); err == nil {
		t.Fatal("nil store accepted")
	}
}
