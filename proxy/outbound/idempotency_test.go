package outbound

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/qrphgate/qrphgate/internal/e2e"
	"github.com/qrphgate/qrphgate/internal/fakemodulus"
	"github.com/qrphgate/qrphgate/proxy"
)

func idOf(t *testing.T, b []byte) string {
	t.Helper()
	var r CreateQRResponse
	if err := json.Unmarshal(b, &r); err != nil || r.ID == "" {
		t.Fatalf("not a create answer: %v %s", err, b)
	}
	return r.ID
}

func TestIdempotentReplay(t *testing.T) {
	h := newHarness(t, hopts{})
	first := h.do("POST", "/v1/pay/qr", createBody("I-1"))
	// Same request, the default merchant named explicitly and fields
	// reordered: the canonical request is the same.
	second := h.do("POST", "/v1/pay/qr", `{"merchantReferenceNumber":"I-1","activationCode":"`+testActivationCode+`","currency":"PHP","amount":"500.00"}`)
	if first.Code != 200 || second.Code != 200 {
		t.Fatalf("%d %d", first.Code, second.Code)
	}
	if second.Header().Get(proxy.HeaderIdempotentReplayed) != "true" || first.Header().Get(proxy.HeaderIdempotentReplayed) != "" {
		t.Fatal("Idempotent-Replayed header wrong")
	}
	if first.Body.String() != second.Body.String() {
		t.Fatalf("replay differs:\n%s\n%s", first.Body, second.Body)
	}
	if n := len(h.fake.Calls()); n != 1 {
		t.Fatalf("%d upstream calls, want 1", n)
	}
	if h.obs.get("replay") != 1 {
		t.Fatalf("observer %v", h.obs.n)
	}

	// Same reference, different body: 409, no call.
	rec := h.do("POST", "/v1/pay/qr", `{"amount":"501.00","currency":"PHP","merchantReferenceNumber":"I-1"}`)
	if e := decodeErr(t, rec.Body.Bytes()); rec.Code != 409 || e.Error.Code != CodeIdempotencyConflict || e.Error.Field != "merchantReferenceNumber" {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	// The same reference for another merchant is another payment.
	if rec := h.do("POST", "/v1/pay/qr", `{"amount":"501.00","currency":"PHP","merchantReferenceNumber":"I-1","activationCode":"`+testOtherMerchant+`"}`); rec.Code != 200 {
		t.Fatalf("other merchant: %d %s", rec.Code, rec.Body)
	}
	if n := len(h.fake.Calls()); n != 2 || h.obs.get("conflict") != 1 {
		t.Fatalf("%d upstream calls, observer %v", n, h.obs.n)
	}

	// After the QR validity the reference is free again.
	h.clock.Advance(15*time.Minute + time.Second)
	if rec := h.do("POST", "/v1/pay/qr", createBody("I-1")); rec.Code != 200 || rec.Header().Get(proxy.HeaderIdempotentReplayed) != "" {
		t.Fatalf("after expiry: %d replayed=%q", rec.Code, rec.Header().Get(proxy.HeaderIdempotentReplayed))
	}
}

// Concurrent duplicates make exactly one upstream call and all get its
// answer; a concurrent request with another body under the same reference
// is a conflict.
func TestIdempotencyConcurrentDuplicates(t *testing.T) {
	h := newHarness(t, hopts{})
	h.fake.Fail(fakemodulus.Fault{Delay: 100 * time.Millisecond}) // keep the leader in flight
	const n = 40
	var wg sync.WaitGroup
	ids := make([]string, n)
	replayed := make([]bool, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rec := h.do("POST", "/v1/pay/qr", createBody("DUP-1"))
			if rec.Code != 200 {
				t.Errorf("duplicate %d: %d %s", i, rec.Code, rec.Body)
				return
			}
			ids[i] = idOf(t, rec.Body.Bytes())
			replayed[i] = rec.Header().Get(proxy.HeaderIdempotentReplayed) == "true"
		}()
	}
	// While the call is in flight, another body under the same reference.
	e2e.WaitFor(t, 10*time.Second, "the first call to be in flight", func() bool { return h.out.idem.inFlight() > 0 })
	rec := h.do("POST", "/v1/pay/qr", `{"amount":"9.00","currency":"PHP","merchantReferenceNumber":"DUP-1"}`)
	if e := decodeErr(t, rec.Body.Bytes()); rec.Code != 409 || e.Error.Code != CodeIdempotencyConflict {
		t.Fatalf("conflicting body in flight: %d %s", rec.Code, rec.Body)
	}
	wg.Wait()
	if c := len(h.fake.Calls()); c != 1 {
		t.Fatalf("%d upstream calls for %d concurrent duplicates", c, n)
	}
	fresh := 0
	for i := range ids {
		if ids[i] != ids[0] {
			t.Fatalf("answers differ: %s vs %s", ids[i], ids[0])
		}
		if !replayed[i] {
			fresh++
		}
	}
	if fresh != 1 {
		t.Fatalf("%d answers not marked replayed, want 1", fresh)
	}
}

// A failed call releases its reference: the app may retry.
func TestIdempotencyFailureReleasesTheKey(t *testing.T) {
	h := newHarness(t, hopts{noRetries: true})
	h.fake.Fail(fakemodulus.Fault{Status: 500})
	if rec := h.do("POST", "/v1/pay/qr", createBody("REL-1")); rec.Code != 502 {
		t.Fatal(rec.Code)
	}
	rec := h.do("POST", "/v1/pay/qr", createBody("REL-1"))
	if rec.Code != 200 || rec.Header().Get(proxy.HeaderIdempotentReplayed) != "" {
		t.Fatalf("retry after failure: %d %v", rec.Code, rec.Header())
	}
	if n := len(h.fake.Calls()); n != 2 {
		t.Fatalf("%d calls", n)
	}
}

// Two gateways (replicas) sharing one store: the second sees the first's
// call in flight, waits for it and replays its answer.
func TestIdempotencyAcrossReplicas(t *testing.T) {
	h := newHarness(t, hopts{})
	other := *h.out
	other.idem = newIdempotency(h.mem, h.clock) // its own process-local state
	h.fake.Fail(fakemodulus.Fault{Delay: 200 * time.Millisecond})
	a := h.async("POST", "/v1/pay/qr", createBody("REP-1"))
	e2e.WaitFor(t, 10*time.Second, "the first call to be in flight", func() bool { return h.out.idem.inFlight() > 0 })
	b := make(chan *httptest.ResponseRecorder, 1)
	go func() {
		w := httptest.NewRecorder()
		other.ServeHTTP(w, request("POST", "/v1/pay/qr", createBody("REP-1")))
		b <- w
	}()
	h.waitTimers(1) // the second replica polls the store
	ra := recv(t, a)
	h.clock.Advance(idemPollEvery)
	rb := recv(t, b)
	if ra.Code != 200 || rb.Code != 200 || rb.Header().Get(proxy.HeaderIdempotentReplayed) != "true" {
		t.Fatalf("a %d, b %d %v", ra.Code, rb.Code, rb.Header())
	}
	if idOf(t, ra.Body.Bytes()) != idOf(t, rb.Body.Bytes()) || len(h.fake.Calls()) != 1 {
		t.Fatalf("replicas made %d calls", len(h.fake.Calls()))
	}
}

// A replica that waits for another's call past its max_wait answers 409
// request_in_flight and makes no call of its own.
func TestIdempotencyWaitEndsAtMaxWait(t *testing.T) {
	h := newHarness(t, hopts{maxWait: 2 * time.Second})
	_, rb, first := h.waitForOtherReplica(t, "REP-2")
	if e := decodeErr(t, rb.Body.Bytes()); rb.Code != 409 || e.Error.Code != CodeRequestInFlight || rb.Header().Get("Retry-After") == "" {
		t.Fatalf("waiting replica: %d %s", rb.Code, rb.Body)
	}
	if ra := recv(t, first); ra.Code != 200 || len(h.fake.Calls()) != 1 {
		t.Fatalf("first replica %d, %d calls", ra.Code, len(h.fake.Calls()))
	}
}

// waitForOtherReplica has a second replica (its own process-local state,
// the same store) create ref while h's call for it is in flight, waiting
// past max_wait (h's, 2s); it returns that replica's request and answer,
// and the first call's answer to come.
func (h *harness) waitForOtherReplica(t *testing.T, ref string) (*http.Request, *httptest.ResponseRecorder, <-chan *httptest.ResponseRecorder) {
	t.Helper()
	other := *h.out
	other.idem = newIdempotency(h.mem, h.clock)
	h.fake.Fail(fakemodulus.Fault{Delay: 2 * time.Second}) // real time: outlasts the fake-clock wait below
	first := h.async("POST", "/v1/pay/qr", createBody(ref))
	e2e.WaitFor(t, 10*time.Second, "the first call to be in flight", func() bool { return h.out.idem.inFlight() > 0 })
	r := request("POST", "/v1/pay/qr", createBody(ref))
	b := make(chan *httptest.ResponseRecorder, 1)
	go func() {
		w := httptest.NewRecorder()
		other.ServeHTTP(w, r)
		b <- w
	}()
	for waited := time.Duration(0); waited < 2*time.Second; waited += idemPollEvery {
		h.waitTimers(1)
		h.clock.Advance(idemPollEvery)
	}
	return r, recv(t, b), first
}
