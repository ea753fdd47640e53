package outbound

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/qrphgate/qrphgate/policy"
	"github.com/qrphgate/qrphgate/store"
)

func createFor(ref, merchant string) string {
	return `{"amount":"1.00","currency":"PHP","merchantReferenceNumber":"` + ref + `","activationCode":"` + merchant + `"}`
}

// One merchant over its merchant_rate_limit gets 429 merchant_rate_limited
// without an upstream call or a slot of the account's budget; another
// merchant of the account still creates QRs, and an idempotent replay of
// the capped merchant's earlier QR is still served (it costs nothing).
func TestMerchantRateLimit(t *testing.T) {
	h := newHarness(t, hopts{merchantRate: policy.RateLimit{Requests: 2, Period: time.Hour}})
	for _, ref := range []string{"M-1", "M-2"} {
		if rec := h.do("POST", "/v1/pay/qr", createFor(ref, testActivationCode)); rec.Code != 200 {
			t.Fatalf("%s: %d %s", ref, rec.Code, rec.Body)
		}
	}
	used := func() int {
		n, err := h.mem.Usage(context.Background(), BudgetKey(policy.Sandbox, AccountID(testSecretKey)), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	before, calls := used(), len(h.fake.CallsTo("/v1/pay/qr"))
	rec := h.do("POST", "/v1/pay/qr", createFor("M-3", testActivationCode))
	e := decodeErr(t, rec.Body.Bytes())
	if rec.Code != http.StatusTooManyRequests || e.Error.Code != CodeMerchantRateLimited || e.Error.Field != "activationCode" {
		t.Fatalf("third QR of a 2/1h merchant: %d %s", rec.Code, rec.Body)
	}
	if ra := rec.Header().Get("Retry-After"); ra == "" || ra == "0" {
		t.Fatalf("Retry-After %q", ra)
	}
	if used() != before || len(h.fake.CallsTo("/v1/pay/qr")) != calls {
		t.Fatal("a capped call took a rate slot or reached the provider")
	}
	if h.obs.get("response:create_qr:Too Many Requests:"+CodeMerchantRateLimited) != 1 {
		t.Fatalf("observer %v", h.obs.n)
	}
	if rec := h.do("POST", "/v1/pay/qr", createFor("O-1", testOtherMerchant)); rec.Code != 200 {
		t.Fatalf("another merchant is capped too: %d %s", rec.Code, rec.Body)
	}
	if rec := h.do("POST", "/v1/pay/qr", createFor("M-1", testActivationCode)); rec.Code != 200 || rec.Header().Get("Idempotent-Replayed") != "true" {
		t.Fatalf("a replay of the capped merchant's QR: %d %v %s", rec.Code, rec.Header(), rec.Body)
	}
	// The refused reference was released: once the window allows, it works.
	if rec := h.do("POST", "/v1/pay/qr", createFor("M-3", testActivationCode)); rec.Code != http.StatusTooManyRequests {
		t.Fatalf("the reference is still capped in this window: %d", rec.Code)
	}
}

// unreachable is a limiter store that cannot be reached.
type unreachable struct{}

func (unreachable) Hit(context.Context, string, int, time.Duration) (store.WindowHit, error) {
	return store.WindowHit{}, errors.Join(store.ErrUnavailable, errors.New("connection refused"))
}

// A limiter store outage never stops a QR: the call goes through, counted.
func TestMerchantRateLimitFailsOpen(t *testing.T) {
	h := newHarness(t, hopts{merchantRate: policy.RateLimit{Requests: 1, Period: time.Hour}, merchantWin: unreachable{}})
	for _, ref := range []string{"F-1", "F-2", "F-3"} {
		if rec := h.do("POST", "/v1/pay/qr", createFor(ref, testActivationCode)); rec.Code != 200 {
			t.Fatalf("%s during a limiter outage: %d %s", ref, rec.Code, rec.Body)
		}
	}
	if n := h.obs.get("limiter_failed_open"); n != 3 {
		t.Fatalf("failed open %d times, want 3", n)
	}
	if n := h.logs.FilterMessageSnippet("rate limiter store unavailable").Len(); n != 1 {
		t.Fatalf("the outage was logged %d times, want once", n)
	}
}
