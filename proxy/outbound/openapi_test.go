package outbound

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/qrphgate/qrphgate/internal/apispec"
	"github.com/qrphgate/qrphgate/internal/e2e"
	"github.com/qrphgate/qrphgate/internal/fakemodulus"
	"github.com/qrphgate/qrphgate/policy"
	"github.com/qrphgate/qrphgate/proxy"
	"github.com/qrphgate/qrphgate/store"
)

// conformanceCase is one answer of the handler to provoke: with opts and
// setup, the request (method, path, body, headers) must answer status with
// the error code (none for a success). run replaces the single request for
// the answers that take several concurrent calls.
type conformanceCase struct {
	name               string
	opts               hopts
	setup              func(t *testing.T, h *harness)
	method, path, body string
	headers            []string
	status             int
	code               string
	run                func(t *testing.T, h *harness) (*http.Request, *httptest.ResponseRecorder)
}

const (
	whCreate   = `{"callbackUrl":"https://pay.example.com/webhooks/modulus","webhookAction":"QRPH_SUCCESS"}`
	whSimulate = `{"qrBody":"00020101021228820011ph.ppmi.p2m0111CUOBPHM2XXX6304ABCD","useCase":"SUCCESS"}`
)

// conformanceCases are every answer the handler gives that a test can
// provoke: each success (JSON and PNG), and each error code on each way it
// arises. TestOpenAPIConformance checks that every code of the document is
// among them.
func conformanceCases() []conformanceCase {
	upstream := func(name, method, path, body string, f fakemodulus.Fault, status int, code string) conformanceCase {
		return conformanceCase{name: name, method: method, path: path, body: body, status: status, code: code,
			opts: hopts{noRetries: true}, setup: func(_ *testing.T, h *harness) { h.fake.Fail(f) }}
	}
	createWebhook := func(t *testing.T, h *harness) string {
		rec := h.do("POST", "/v1/webhooks", whCreate)
		var w struct{ ID string }
		if rec.Code != 201 || json.Unmarshal(rec.Body.Bytes(), &w) != nil || w.ID == "" {
			t.Fatalf("creating a webhook: %d %s", rec.Code, rec.Body)
		}
		return w.ID
	}
	createQR := func(t *testing.T, h *harness, ref string) string {
		rec := h.do("POST", "/v1/pay/qr", createBody(ref))
		if rec.Code != 200 {
			t.Fatalf("creating a QR: %d %s", rec.Code, rec.Body)
		}
		return idOf(t, rec.Body.Bytes())
	}
	serve := func(h *harness, r *http.Request) (*http.Request, *httptest.ResponseRecorder) {
		return r, newRecorderFor(h, r)
	}
	return []conformanceCase{
		// Successes.
		{name: "create QR", method: "POST", path: "/v1/pay/qr", body: createBody("OK-1"), status: 200},
		{name: "create QR for a named merchant", method: "POST", path: "/v1/pay/qr", status: 200,
			body: `{"amount":"1.00","currency":"PHP","merchantReferenceNumber":"OK-2","activationCode":"` + testOtherMerchant + `"}`},
		{name: "create QR as PNG", method: "POST", path: "/v1/pay/qr", body: createBody("OK-3"), headers: []string{"Accept: image/png"}, status: 200},
		{name: "create QR replayed", method: "POST", path: "/v1/pay/qr", body: createBody("OK-4"), status: 200,
			setup: func(t *testing.T, h *harness) { createQR(t, h, "OK-4") }},
		{name: "create QR replayed as PNG", method: "POST", path: "/v1/pay/qr", body: createBody("OK-5"), headers: []string{"Accept: image/png"}, status: 200,
			setup: func(t *testing.T, h *harness) { createQR(t, h, "OK-5") }},
		{name: "list webhooks", method: "GET", path: "/v1/webhooks", status: 200,
			setup: func(t *testing.T, h *harness) { createWebhook(t, h) }},
		{name: "create webhook", method: "POST", path: "/v1/webhooks", body: whCreate, headers: []string{"Activation-Code: MERCHANT_ABC_123"}, status: 201},
		{name: "update webhook", status: 200, run: func(t *testing.T, h *harness) (*http.Request, *httptest.ResponseRecorder) {
			return serve(h, request("PUT", "/v1/webhooks/"+createWebhook(t, h), `{"webhookStatus":"DISABLED"}`))
		}},
		{name: "delete webhook", status: 204, run: func(t *testing.T, h *harness) (*http.Request, *httptest.ResponseRecorder) {
			return serve(h, request("DELETE", "/v1/webhooks/"+createWebhook(t, h), ""))
		}},
		{name: "simulate", method: "POST", path: "/v1/webhooks/qrph/simulate", body: whSimulate, status: 200},
		{name: "ping", method: "GET", path: "/ping", status: 200},
		{name: "openapi.json", method: "GET", path: "/openapi.json", status: 200},
		{name: "payment status by id", status: 200, opts: hopts{ledger: new(fakeLedger)}, run: func(t *testing.T, h *harness) (*http.Request, *httptest.ResponseRecorder) {
			return serve(h, request("GET", "/v1/pay/qr/"+createQR(t, h, "ST-1"), ""))
		}},
		{name: "payment status by reference", status: 200, opts: hopts{ledger: new(fakeLedger)}, run: func(t *testing.T, h *harness) (*http.Request, *httptest.ResponseRecorder) {
			createQR(t, h, "ST-2")
			return serve(h, request("GET", "/v1/pay/qr?merchantReferenceNumber=ST-2", ""))
		}},
		{name: "payment status of an unknown id", method: "GET", path: "/v1/pay/qr/no-such-transaction", status: 404, code: CodeNotFound,
			opts: hopts{ledger: new(fakeLedger)}},
		{name: "payment status without a reference", method: "GET", path: "/v1/pay/qr", status: 400, code: policy.CodeMissingField,
			opts: hopts{ledger: new(fakeLedger)}},
		{name: "payment status of another merchant", method: "GET", path: "/v1/pay/qr?merchantReferenceNumber=ST-3&activationCode=QQQQ-QQQQ-QQQQ-QQQQ",
			status: 400, code: CodeUnknownMerchant, opts: hopts{ledger: new(fakeLedger)}},
		{name: "ledger_unavailable", method: "GET", path: "/v1/pay/qr/ST-4", status: 503, code: CodeLedgerUnavailable,
			opts: hopts{ledger: &fakeLedger{err: errors.New("store unavailable: redis down")}}},

		// 400: validation, before anything goes upstream.
		{name: "invalid_json", method: "POST", path: "/v1/pay/qr", body: `{"amount":`, status: 400, code: policy.CodeInvalidJSON},
		{name: "unknown_field", method: "POST", path: "/v1/pay/qr", body: `{"amount":"1.00","currency":"PHP","merchantReferenceNumber":"a","tip":"1"}`, status: 400, code: policy.CodeUnknownField},
		{name: "missing_field", method: "POST", path: "/v1/pay/qr", body: `{"currency":"PHP","merchantReferenceNumber":"a"}`, status: 400, code: policy.CodeMissingField},
		{name: "invalid_amount", method: "POST", path: "/v1/pay/qr", body: `{"amount":500,"currency":"PHP","merchantReferenceNumber":"a"}`, status: 400, code: policy.CodeInvalidAmount},
		{name: "amount_out_of_range", method: "POST", path: "/v1/pay/qr", body: `{"amount":"0.99","currency":"PHP","merchantReferenceNumber":"a"}`, status: 400, code: policy.CodeAmountOutOfRange},
		{name: "invalid_currency", method: "POST", path: "/v1/pay/qr", body: `{"amount":"1.00","currency":"php","merchantReferenceNumber":"a"}`, status: 400, code: policy.CodeInvalidCurrency},
		{name: "unsupported_currency", method: "POST", path: "/v1/pay/qr", body: `{"amount":"1.00","currency":"USD","merchantReferenceNumber":"a"}`, status: 400, code: policy.CodeUnsupportedCurrency},
		{name: "invalid_reference", method: "POST", path: "/v1/pay/qr", body: `{"amount":"1.00","currency":"PHP","merchantReferenceNumber":"a_b"}`, status: 400, code: policy.CodeInvalidReference},
		{name: "invalid_activation_code", method: "POST", path: "/v1/pay/qr", body: `{"amount":"1.00","currency":"PHP","merchantReferenceNumber":"a","activationCode":"abc"}`, status: 400, code: policy.CodeInvalidActivationCode},
		{name: "unknown_merchant", method: "POST", path: "/v1/pay/qr", body: `{"amount":"1.00","currency":"PHP","merchantReferenceNumber":"a","activationCode":"QQQQ-QQQQ-QQQQ-QQQQ"}`, status: 400, code: CodeUnknownMerchant},
		{name: "webhook unknown_field", method: "POST", path: "/v1/webhooks", body: `{"callbackUrl":"https://a.example","webhookAction":"QRPH_SUCCESS","webhookStatus":"ENABLED"}`, status: 400, code: policy.CodeUnknownField},
		{name: "webhook missing_field", method: "PUT", path: "/v1/webhooks/abc", body: `{}`, status: 400, code: policy.CodeMissingField},
		{name: "webhook invalid_json", method: "POST", path: "/v1/webhooks", body: `[]`, status: 400, code: policy.CodeInvalidJSON},
		{name: "invalid_callback_url", method: "POST", path: "/v1/webhooks", body: `{"callbackUrl":"ftp://a.example/x","webhookAction":"QRPH_SUCCESS"}`, status: 400, code: CodeInvalidCallbackURL},
		{name: "invalid_webhook_action", method: "POST", path: "/v1/webhooks", body: `{"callbackUrl":"https://a.example/x","webhookAction":"QRPH_MAYBE"}`, status: 400, code: CodeInvalidWebhookAction},
		{name: "invalid_webhook_status", method: "PUT", path: "/v1/webhooks/abc", body: `{"webhookStatus":"PAUSED"}`, status: 400, code: CodeInvalidWebhookStatus},
		{name: "invalid_use_case", method: "POST", path: "/v1/webhooks/qrph/simulate", body: `{"qrBody":"000201","useCase":"MAYBE"}`, status: 400, code: CodeInvalidUseCase},
		{name: "invalid_qr_body", method: "POST", path: "/v1/webhooks/qrph/simulate", body: `{"qrBody":"iVBORw0KGgoAAAA","useCase":"SUCCESS"}`, status: 400, code: CodeInvalidQRBody},
		{name: "invalid_webhook_id", method: "DELETE", path: "/v1/webhooks/a_b", status: 400, code: CodeInvalidWebhookID},
		{name: "invalid_header", method: "POST", path: "/v1/webhooks", body: whCreate, headers: []string{"Activation-Code: not valid!"}, status: 400, code: CodeInvalidHeader},
		{name: "sandbox_only", opts: hopts{env: policy.Production}, method: "POST", path: "/v1/webhooks/qrph/simulate", body: whSimulate, status: 400, code: CodeSandboxOnly},

		// 404, 405, 413, 415: the request itself.
		{name: "not_found", method: "GET", path: "/v1/pay/other", status: 404, code: CodeNotFound},
		{name: "method_not_allowed on create", method: "PUT", path: "/v1/pay/qr", body: createBody("a"), status: 405, code: proxy.CodeMethodNotAllowed},
		{name: "method_not_allowed on ping", method: "POST", path: "/ping", status: 405, code: proxy.CodeMethodNotAllowed},
		{name: "method_not_allowed on webhooks", method: "DELETE", path: "/v1/webhooks", status: 405, code: proxy.CodeMethodNotAllowed},
		{name: "method_not_allowed on a webhook", method: "GET", path: "/v1/webhooks/abc", status: 405, code: proxy.CodeMethodNotAllowed},
		{name: "method_not_allowed on simulate", method: "GET", path: "/v1/webhooks/qrph/simulate", status: 405, code: proxy.CodeMethodNotAllowed},
		{name: "method_not_allowed on openapi.json", method: "POST", path: "/openapi.json", status: 405, code: proxy.CodeMethodNotAllowed},
		{name: "body_too_large", method: "POST", path: "/v1/pay/qr", body: `{"amount":"` + strings.Repeat("1", maxRequestBody) + `"}`, status: 413, code: proxy.CodeBodyTooLarge},
		{name: "body_too_large on webhooks", method: "PUT", path: "/v1/webhooks/abc", body: `{"callbackUrl":"` + strings.Repeat("a", maxRequestBody) + `"}`, status: 413, code: proxy.CodeBodyTooLarge},
		{name: "unsupported_media_type", method: "POST", path: "/v1/pay/qr", body: createBody("a"), headers: []string{"Content-Type: text/plain"}, status: 415, code: proxy.CodeUnsupportedMedia},

		// 409.
		{name: "idempotency_conflict", method: "POST", path: "/v1/pay/qr", body: `{"amount":"2.00","currency":"PHP","merchantReferenceNumber":"C-1"}`, status: 409, code: CodeIdempotencyConflict,
			setup: func(t *testing.T, h *harness) { createQR(t, h, "C-1") }},
		{name: "request_in_flight", opts: hopts{maxWait: 2 * time.Second}, status: 409, code: CodeRequestInFlight,
			run: func(t *testing.T, h *harness) (*http.Request, *httptest.ResponseRecorder) {
				r, rec, first := h.waitForOtherReplica(t, "IF-1")
				recv(t, first)
				return r, rec
			}},

		// 429.
		{name: "rate_limited", opts: hopts{rate: policy.RateLimit{Requests: 1, Period: time.Minute}}, method: "POST", path: "/v1/pay/qr", body: createBody("RL-2"), status: 429, code: CodeRateLimited,
			setup: func(t *testing.T, h *harness) { createQR(t, h, "RL-1") }},
		{name: "merchant_rate_limited", opts: hopts{merchantRate: policy.RateLimit{Requests: 1, Period: time.Hour}}, method: "POST", path: "/v1/pay/qr", body: createBody("MR-2"), status: 429, code: CodeMerchantRateLimited,
			setup: func(t *testing.T, h *harness) { createQR(t, h, "MR-1") }},
		{name: "queue_full", opts: hopts{rate: policy.RateLimit{Requests: 1, Period: time.Minute}, maxWait: 5 * time.Minute, maxQueue: 1}, status: 429, code: CodeQueueFull,
			run: func(t *testing.T, h *harness) (*http.Request, *httptest.ResponseRecorder) {
				createQR(t, h, "Q-0")
				waiting := h.async("GET", "/v1/webhooks", "")
				h.waitTimers(1)
				r, rec := serve(h, request("GET", "/ping", ""))
				h.clock.Advance(time.Minute)
				if w := recv(t, waiting); w.Code != 200 {
					t.Fatalf("the queued call: %d %s", w.Code, w.Body)
				}
				return r, rec
			}},
		upstream("upstream_rate_limited", "POST", "/v1/pay/qr", createBody("UR-1"), fakemodulus.Fault{Status: 429, RetryAfter: "3600"}, 429, CodeUpstreamRateLimited),

		// The provider's refusals, passed on.
		upstream("upstream_unauthorized 401", "POST", "/v1/pay/qr", createBody("UA-1"), fakemodulus.Fault{Status: 401}, 401, CodeUpstreamUnauthorized),
		upstream("upstream_unauthorized 403", "GET", "/v1/webhooks", "", fakemodulus.Fault{Status: 403}, 403, CodeUpstreamUnauthorized),
		upstream("upstream_rejected 400", "POST", "/v1/pay/qr", createBody("UJ-1"), fakemodulus.Fault{Status: 400}, 400, CodeUpstreamRejected),
		upstream("upstream_rejected 409", "POST", "/v1/webhooks", whCreate, fakemodulus.Fault{Status: 409}, 409, CodeUpstreamRejected),
		upstream("upstream_rejected 413", "PUT", "/v1/webhooks/abc", `{"webhookStatus":"ENABLED"}`, fakemodulus.Fault{Status: 413}, 413, CodeUpstreamRejected),
		upstream("upstream_rejected 415", "POST", "/v1/webhooks/qrph/simulate", whSimulate, fakemodulus.Fault{Status: 415}, 415, CodeUpstreamRejected),
		upstream("upstream_rejected 422", "POST", "/v1/pay/qr", createBody("UJ-2"), fakemodulus.Fault{Status: 422}, 422, CodeUpstreamRejected),
		upstream("upstream_rejected on ping", "GET", "/ping", "", fakemodulus.Fault{Status: 418}, 418, CodeUpstreamRejected),
		{name: "upstream_rejected 404", method: "DELETE", path: "/v1/webhooks/no-such-webhook", status: 404, code: CodeUpstreamRejected},

		// 500, 501.
		{name: "internal_error", opts: hopts{idem: func(s store.Idempotency) store.Idempotency { return corruptIdempotency{s} }},
			method: "POST", path: "/v1/pay/qr", body: createBody("IE-1"), status: 500, code: proxy.CodeInternal},
		{name: "webhooks_not_configured", opts: hopts{noWebhooks: true}, method: "GET", path: "/v1/webhooks", status: 501, code: CodeWebhooksNotConfigured},

		// 502, 504: the provider failed.
		upstream("upstream_unavailable 5xx", "POST", "/v1/pay/qr", createBody("UU-1"), fakemodulus.Fault{Status: 503}, 502, CodeUpstreamUnavailable),
		upstream("upstream_unavailable reset", "POST", "/v1/pay/qr", createBody("UU-2"), fakemodulus.Fault{ResetAfterRead: true}, 502, CodeUpstreamUnavailable),
		{name: "upstream_unavailable unreachable", opts: hopts{noRetries: true, qrURL: closedURL()}, method: "GET", path: "/ping", status: 502, code: CodeUpstreamUnavailable},
		upstream("upstream_bad_response", "POST", "/v1/pay/qr", createBody("UB-1"), fakemodulus.Fault{BadToken: true}, 502, CodeUpstreamBadResponse),
		upstream("upstream_bad_response on webhooks", "GET", "/v1/webhooks", "", fakemodulus.Fault{Status: 200, Body: "<html>maintenance</html>", ContentType: "text/html"}, 502, CodeUpstreamBadResponse),
		upstream("upstream_bad_response redirect", "GET", "/ping", "", fakemodulus.Fault{Status: 302}, 502, CodeUpstreamBadResponse),
		{name: "upstream_timeout", opts: hopts{noRetries: true, timeout: 100 * time.Millisecond}, method: "POST", path: "/v1/pay/qr", body: createBody("UT-1"), status: 504, code: CodeUpstreamTimeout,
			setup: func(_ *testing.T, h *harness) { h.fake.Fail(fakemodulus.Fault{Hang: true}) }},

		// 503: the gateway protects the provider, or cannot keep its word.
		{name: "breaker_open", opts: hopts{noRetries: true, breaker: BreakerSettings{Failures: 1, Window: time.Minute, Open: 30 * time.Second, Probes: 1}},
			method: "POST", path: "/v1/pay/qr", body: createBody("BO-2"), status: 503, code: CodeBreakerOpen,
			setup: func(t *testing.T, h *harness) {
				h.fake.Fail(fakemodulus.Fault{Status: 500})
				if rec := h.do("POST", "/v1/pay/qr", createBody("BO-1")); rec.Code != 502 {
					t.Fatalf("the failure that opens the breaker: %d", rec.Code)
				}
			}},
		{name: "credentials_rejected", opts: hopts{authFailures: 1}, method: "GET", path: "/v1/webhooks", status: 503, code: CodeCredentialsRejected,
			setup: func(t *testing.T, h *harness) {
				h.fake.Fail(fakemodulus.Fault{Status: 401})
				if rec := h.do("POST", "/v1/pay/qr", createBody("CR-1")); rec.Code != 401 {
					t.Fatalf("the rejection that blows the fuse: %d", rec.Code)
				}
			}},
		{name: "credentials_unverified", opts: hopts{noRetries: true, timeout: 2 * time.Second, maxWait: time.Second}, status: 503, code: CodeCredentialsUnverified,
			run: func(t *testing.T, h *harness) (*http.Request, *httptest.ResponseRecorder) {
				// The first authenticated call is proving the credentials
				// (it hangs at the provider); the next waits for it, then
				// gives up at max_wait.
				h.fake.Fail(fakemodulus.Fault{Hang: true})
				first := h.async("POST", "/v1/pay/qr", createBody("CU-1"))
				e2e.WaitFor(t, 10*time.Second, "the first call to hold the credentials slot", func() bool { return len(h.out.fuse.slot) > 0 })
				r := request("GET", "/v1/webhooks", "")
				second := make(chan *httptest.ResponseRecorder, 1)
				go func() { second <- newRecorderFor(h, r) }()
				h.waitTimers(1)
				h.clock.Advance(time.Second)
				rec := recv(t, second)
				recv(t, first)
				return r, rec
			}},
		{name: "store_unavailable", opts: hopts{idem: func(store.Idempotency) store.Idempotency { return unreachableIdempotency{} }},
			method: "POST", path: "/v1/pay/qr", body: createBody("SU-1"), status: 503, code: CodeStoreUnavailable},
	}
}

// notProvokedYet are codes the document lists that no code path answers
// yet: TestOpenAPIConformance accepts them unprovoked only while no code
// constant of that value exists (the feature has not landed); once one
// does, it needs a case in conformanceCases.
var notProvokedYet = map[string]string{}

// TestOpenAPIConformance runs the real handler (against the fake provider)
// through every answer conformanceCases provokes and validates each, status,
// headers and body, against proxy/openapi.json with kin-openapi: an answer
// the document does not describe fails. Then every error code the document
// lists must have been provoked.
func TestOpenAPIConformance(t *testing.T) {
	spec := apispec.Load(t)
	provoked := map[string]bool{}
	for _, tc := range conformanceCases() {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.opts)
			if tc.setup != nil {
				tc.setup(t, h)
			}
			var req *http.Request
			var rec *httptest.ResponseRecorder
			if tc.run != nil {
				req, rec = tc.run(t, h)
			} else {
				req = request(tc.method, tc.path, tc.body, tc.headers...)
				rec = newRecorderFor(h, req)
			}
			code := ""
			if rec.Code >= 400 {
				code = decodeErr(t, rec.Body.Bytes()).Error.Code
			}
			if rec.Code != tc.status || code != tc.code {
				t.Fatalf("the case did not provoke what it names: %d %q (%s), want %d %q", rec.Code, code, rec.Body, tc.status, tc.code)
			}
			if err := spec.CheckResponse(req, rec.Code, rec.Header(), rec.Body.Bytes()); err != nil {
				t.Fatalf("the answer does not match proxy/openapi.json: %v\nheaders %v\nbody %.300s", err, rec.Header(), rec.Body)
			}
			if tc.code == "" && tc.run == nil {
				// The document also accepts the request the app sent.
				if err := spec.CheckRequest(request(tc.method, tc.path, tc.body, tc.headers...), []byte(tc.body)); err != nil {
					t.Fatalf("the document refuses the request: %v", err)
				}
			}
			checkSuccessBody(t, h, req, rec)
			provoked[code] = true
		})
	}
	constants := codeConstants(t)
	for code, statuses := range spec.ErrorCodes() {
		if provoked[code] {
			continue
		}
		why, pending := notProvokedYet[code]
		switch {
		case pending && !constants[code]:
			t.Logf("%s (%v) is documented for %s, not provoked: it is not implemented yet", code, statuses, why)
		case t.Failed():
			// A failed case may be why; its own error says more.
		default:
			t.Errorf("the document lists %s (%v) but no conformance case provokes it: add one", code, statuses)
		}
	}
}

// checkSuccessBody checks what the document cannot: the PNG is a PNG, and
// GET /openapi.json is the embedded document byte for byte.
func checkSuccessBody(t *testing.T, h *harness, req *http.Request, rec *httptest.ResponseRecorder) {
	t.Helper()
	switch {
	case rec.Code != 200:
	case rec.Header().Get("Content-Type") == "image/png":
		if !bytes.Equal(rec.Body.Bytes(), h.fake.PNG()) {
			t.Fatal("the PNG answer is not the provider's image")
		}
	case req.URL.Path == "/openapi.json":
		if !bytes.Equal(rec.Body.Bytes(), proxy.OpenAPI()) || !json.Valid(rec.Body.Bytes()) {
			t.Fatal("GET /openapi.json is not the embedded document")
		}
	}
}

// TestOpenAPIValidatorCatchesDrift shows the check has teeth: real answers,
// each altered in one way the document forbids, are refused.
func TestOpenAPIValidatorCatchesDrift(t *testing.T) {
	spec := apispec.Load(t)
	h := newHarness(t, hopts{})
	created := h.do("POST", "/v1/pay/qr", createBody("DRIFT-1"))
	png := h.do("POST", "/v1/pay/qr", createBody("DRIFT-1"), "Accept: image/png")
	refused := h.do("POST", "/v1/pay/qr", `{"amount":"1.00","currency":"php","merchantReferenceNumber":"a"}`)
	notAllowed := h.do("PUT", "/v1/pay/qr", "")
	for _, rec := range []*httptest.ResponseRecorder{created, png, refused, notAllowed} {
		if rec.Code != 200 && rec.Code != 400 && rec.Code != 405 {
			t.Fatalf("setup: %d %s", rec.Code, rec.Body)
		}
	}
	post := request("POST", "/v1/pay/qr", "")
	tests := []struct {
		name   string
		req    *http.Request
		status int
		header http.Header
		body   string
	}{
		{"a renamed member", post, 200, created.Header(), strings.Replace(created.Body.String(), `"qrBody"`, `"qr_body"`, 1)},
		{"an extra member", post, 200, created.Header(), strings.Replace(created.Body.String(), `{`, `{"status":"pending",`, 1)},
		{"a number for a string", post, 200, created.Header(), strings.Replace(created.Body.String(), `"amount":"500.00"`, `"amount":500`, 1)},
		{"a required header missing", post, 200, without(created.Header(), proxy.HeaderTransactionID), created.Body.String()},
		{"a PNG of another type", post, 200, with(png.Header(), "Content-Type", "image/jpeg"), png.Body.String()},
		{"an undocumented status", post, 418, refused.Header(), refused.Body.String()},
		{"a code under another status", post, 503, refused.Header(), refused.Body.String()},
		{"an unknown code", post, 400, refused.Header(), strings.Replace(refused.Body.String(), policy.CodeInvalidCurrency, "bad_currency", 1)},
		{"an error without its message", post, 400, refused.Header(), `{"error":{"code":"invalid_currency"}}`},
		{"a 429 without Retry-After", post, 429, refused.Header(), `{"error":{"code":"rate_limited","message":"m"}}`},
		{"a 405 without Allow", request("PUT", "/v1/pay/qr", ""), 405, without(notAllowed.Header(), "Allow"), notAllowed.Body.String()},
		{"a 405 allowing what the document lacks", request("PUT", "/v1/pay/qr", ""), 405, with(notAllowed.Header(), "Allow", "POST, PATCH"), notAllowed.Body.String()},
		{"a 200 on a path the document lacks", request("GET", "/v1/pay/other", ""), 200, created.Header(), created.Body.String()},
	}
	for _, tc := range tests {
		if err := spec.CheckResponse(tc.req, tc.status, tc.header, []byte(tc.body)); err == nil {
			t.Errorf("%s: the validator accepted it", tc.name)
		}
	}
	// The unaltered answers pass, so the refusals above are the alterations'.
	for _, rec := range []*httptest.ResponseRecorder{created, png, refused} {
		if err := spec.CheckResponse(post, rec.Code, rec.Header(), rec.Body.Bytes()); err != nil {
			t.Errorf("an unaltered answer was refused: %v", err)
		}
	}
	if err := spec.CheckResponse(request("PUT", "/v1/pay/qr", ""), notAllowed.Code, notAllowed.Header(), notAllowed.Body.Bytes()); err != nil {
		t.Errorf("an unaltered 405 was refused: %v", err)
	}
}

func with(h http.Header, k, v string) http.Header {
	c := h.Clone()
	c.Set(k, v)
	return c
}

func without(h http.Header, k string) http.Header {
	c := h.Clone()
	c.Del(k)
	return c
}

// corruptIdempotency answers every key as completed with an answer that
// cannot be read (a store shared with an incompatible version, say).
type corruptIdempotency struct{ store.Idempotency }

func (corruptIdempotency) Begin(_ context.Context, _, fingerprint string, _ time.Duration) (store.Claim, error) {
	return store.Claim{State: store.Completed, Fingerprint: fingerprint, Value: []byte("not a stored answer")}, nil
}

// unreachableIdempotency is a store whose server is down.
type unreachableIdempotency struct{ store.Idempotency }

func (unreachableIdempotency) Begin(context.Context, string, string, time.Duration) (store.Claim, error) {
	return store.Claim{}, fmt.Errorf("%w: redis: connection refused", store.ErrUnavailable)
}

// closedURL is an address nothing listens on.
func closedURL() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return "http://" + addr
}
