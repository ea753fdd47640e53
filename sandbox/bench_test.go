package sandbox

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/qrphgate/qrphgate/policy"
)

// BenchmarkCreateQR is one provider call end to end inside the handler:
// open the request token, validate, build the EMVCo text, render the QR
// PNG, seal the answer.
func BenchmarkCreateQR(b *testing.B) {
	h := newHarness(b, func(c *Config) {
		c.RateLimit = policy.RateLimit{Requests: 1 << 30, Period: time.Minute}
		c.Logger = nil
	})
	body := h.seal(`{"activationCode":"` + testMerchant + `","currency":"PHP","amount":"500.00","merchantReferenceNumber":"ORDER-1"}`)
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest(http.MethodPost, "/v1/pay/qr", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.SetBasicAuth(testSecret, "")
		w := httptest.NewRecorder()
		h.sim.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatalf("%d %s", w.Code, w.Body)
		}
	}
}

func BenchmarkRenderPNG(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := RenderPNG(providerExample); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParsePayload(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParsePayload(providerExample); err != nil {
			b.Fatal(err)
		}
	}
}
