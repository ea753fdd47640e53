package outbound

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qrphgate/qrphgate/policy"
)

// fakeLedger keeps created QRs and answers their status as a JSON
// document naming them; err makes every call fail.
type fakeLedger struct {
	mu      sync.Mutex
	created []CreatedQR
	queries []StatusQuery
	err     error
}

func (f *fakeLedger) RecordQR(_ context.Context, qr CreatedQR) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	f.created = append(f.created, qr)
	return nil
}

func (f *fakeLedger) QRStatus(_ context.Context, q StatusQuery) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queries = append(f.queries, q)
	if f.err != nil {
		return nil, f.err
	}
	for i := len(f.created) - 1; i >= 0; i-- {
		qr := f.created[i]
		if qr.ID == q.ID || (q.ID == "" && qr.Reference == q.Reference && qr.ActivationCode == q.ActivationCode) {
			return json.Marshal(map[string]string{"id": qr.ID, "merchantReferenceNumber": qr.Reference, "amount": qr.Amount.String(),
				"currency": qr.Currency, "status": "pending", "createdAt": qr.CreatedAt.UTC().Format(time.RFC3339),
				"expiresAt": qr.ExpiresAt.UTC().Format(time.RFC3339)})
		}
	}
	return nil, ErrQRNotFound
}

func (f *fakeLedger) list() []CreatedQR {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]CreatedQR(nil), f.created...)
}

// Every QR the provider creates is recorded once, before it is answered,
// with the merchant, the amount in centavos and the expiry the app got; a
// replay records nothing.
func TestCreatedQRIsRecorded(t *testing.T) {
	led := new(fakeLedger)
	h := newHarness(t, hopts{ledger: led})
	rec := h.do(http.MethodPost, "/v1/pay/qr", createBody("ORDER-1"))
	if rec.Code != http.StatusOK {
		t.Fatalf("create: %d %s", rec.Code, rec.Body)
	}
	var ans CreateQRResponse
	_ = json.Unmarshal(rec.Body.Bytes(), &ans)
	got := led.list()
	if len(got) != 1 {
		t.Fatalf("recorded %+v", got)
	}
	qr := got[0]
	exp, _ := time.Parse(time.RFC3339, ans.ExpiresAt)
	if qr.ID != ans.ID || qr.ActivationCode != testActivationCode || qr.Reference != "ORDER-1" || qr.Amount != 50000 ||
		qr.Currency != "PHP" || !qr.ExpiresAt.Equal(exp) || !qr.CreatedAt.Equal(h.clock.Now()) {
		t.Fatalf("recorded %+v, answered %+v", qr, ans)
	}
	if rec := h.do(http.MethodPost, "/v1/pay/qr", createBody("ORDER-1")); rec.Code != http.StatusOK || len(led.list()) != 1 {
		t.Fatalf("replay: %d, %d recorded", rec.Code, len(led.list()))
	}
	other := `{"amount":"1.00","currency":"PHP","merchantReferenceNumber":"ORDER-2","activationCode":"` + testOtherMerchant + `"}`
	if rec := h.do(http.MethodPost, "/v1/pay/qr", other); rec.Code != http.StatusOK {
		t.Fatalf("create for the other merchant: %d %s", rec.Code, rec.Body)
	}
	if got := led.list(); len(got) != 2 || got[1].ActivationCode != testOtherMerchant || got[1].Amount != policy.Centavos(100) {
		t.Fatalf("recorded %+v", got)
	}
}

// A ledger that fails never fails the QR.
func TestLedgerFailureDoesNotFailTheQR(t *testing.T) {
	h := newHarness(t, hopts{ledger: &fakeLedger{err: errors.New("store unavailable: redis down")}})
	if rec := h.do(http.MethodPost, "/v1/pay/qr", createBody("ORDER-1")); rec.Code != http.StatusOK {
		t.Fatalf("create: %d %s", rec.Code, rec.Body)
	}
}

// The status calls: by id and by reference (the default merchant unless
// the app names one), answered from the ledger with no upstream call.
func TestQRStatus(t *testing.T) {
	led := new(fakeLedger)
	h := newHarness(t, hopts{ledger: led})
	rec := h.do(http.MethodPost, "/v1/pay/qr", createBody("ORDER-1"))
	var ans CreateQRResponse
	_ = json.Unmarshal(rec.Body.Bytes(), &ans)
	calls := len(h.fake.Calls())

	for _, path := range []string{"/v1/pay/qr/" + ans.ID, "/v1/pay/qr?merchantReferenceNumber=ORDER-1",
		"/v1/pay/qr?merchantReferenceNumber=ORDER-1&activationCode=" + testActivationCode} {
		rec := h.do(http.MethodGet, path, "")
		var doc struct{ ID, Status string }
		if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &doc) != nil || doc.ID != ans.ID || doc.Status != "pending" ||
			!strings.HasSuffix(rec.Body.String(), "}\n") ||
			rec.Header().Get("Content-Type") != "application/json" || rec.Header().Get("Cache-Control") != "no-store" {
			t.Fatalf("GET %s: %d %q %v", path, rec.Code, rec.Body, rec.Header())
		}
	}
	if q := led.queries[1]; q.ActivationCode != testActivationCode || q.Reference != "ORDER-1" || q.ID != "" {
		t.Fatalf("query by reference %+v", q)
	}
	if n := len(h.fake.Calls()); n != calls {
		t.Fatalf("%d upstream calls for status", n-calls)
	}
	if rec := h.do(http.MethodHead, "/v1/pay/qr/"+ans.ID, ""); rec.Code != http.StatusOK || rec.Body.Len() != 0 {
		t.Fatalf("HEAD: %d %q", rec.Code, rec.Body)
	}
	if n := h.obs.get("response:qr_status:OK:"); n != 4 {
		t.Fatalf("%d qr_status responses counted", n)
	}

	for _, tc := range []struct {
		method, path string
		status       int
		code, allow  string
	}{
		{http.MethodGet, "/v1/pay/qr/nope", 404, "not_found", ""},
		{http.MethodGet, "/v1/pay/qr/a%20b", 404, "not_found", ""},
		{http.MethodGet, "/v1/pay/qr/" + strings.Repeat("a", 129), 404, "not_found", ""},
		{http.MethodGet, "/v1/pay/qr?merchantReferenceNumber=ORDER-9", 404, "not_found", ""},
		{http.MethodGet, "/v1/pay/qr?merchantReferenceNumber=ORDER-1&activationCode=" + testOtherMerchant, 404, "not_found", ""},
		{http.MethodGet, "/v1/pay/qr", 400, "missing_field", ""},
		{http.MethodGet, "/v1/pay/qr?merchantReferenceNumber=a%0Ab", 400, "invalid_reference", ""},
		{http.MethodGet, "/v1/pay/qr?merchantReferenceNumber=ORDER-1&activationCode=ZZZZ-ZZZZ-ZZZZ-ZZZZ", 400, "unknown_merchant", ""},
		{http.MethodPost, "/v1/pay/qr/" + ans.ID, 405, "method_not_allowed", "GET"},
		{http.MethodPut, "/v1/pay/qr", 405, "method_not_allowed", "GET, POST"},
	} {
		rec := h.do(tc.method, tc.path, "")
		var e struct {
			Error struct{ Code string } `json:"error"`
		}
		_ = json.Unmarshal(rec.Body.Bytes(), &e)
		if rec.Code != tc.status || e.Error.Code != tc.code || rec.Header().Get("Allow") != tc.allow {
			t.Fatalf("%s %s: %d %s (Allow %q), want %d %s", tc.method, tc.path, rec.Code, rec.Body, rec.Header().Get("Allow"), tc.status, tc.code)
		}
	}
}

// A ledger that cannot be reached answers 503 with Retry-After; an engine
// with no ledger finds no QR.
func TestQRStatusWithoutALedger(t *testing.T) {
	h := newHarness(t, hopts{ledger: &fakeLedger{err: errors.New("store unavailable")}})
	rec := h.do(http.MethodGet, "/v1/pay/qr/abc", "")
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("unreachable ledger: %d %s %v", rec.Code, rec.Body, rec.Header())
	}
	h = newHarness(t, hopts{})
	if rec := h.do(http.MethodGet, "/v1/pay/qr/abc", ""); rec.Code != http.StatusNotFound {
		t.Fatalf("no ledger: %d %s", rec.Code, rec.Body)
	}
	if rec := h.do(http.MethodPost, "/v1/pay/qr", createBody("ORDER-1")); rec.Code != http.StatusOK {
		t.Fatalf("create without a ledger: %d %s", rec.Code, rec.Body)
	}
}
