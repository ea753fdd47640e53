package outbound

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/qrphgate/qrphgate/internal/fakemodulus"
	"github.com/qrphgate/qrphgate/policy"
	"github.com/qrphgate/qrphgate/proxy"
)

type errBody struct {
	Error struct {
		Code     string               `json:"code"`
		Message  string               `json:"message"`
		Field    string               `json:"field"`
		Upstream *proxy.UpstreamError `json:"upstream"`
	} `json:"error"`
}

func decodeErr(t *testing.T, b []byte) errBody {
	t.Helper()
	var e errBody
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("error body is not JSON: %v: %s", err, b)
	}
	return e
}

func TestCreateQR(t *testing.T) {
	h := newHarness(t, hopts{})
	rec := h.do("POST", "/v1/pay/qr", createBody("ORDER-1"))
	if rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	var res CreateQRResponse
	dec := json.NewDecoder(rec.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&res); err != nil {
		t.Fatal(err)
	}
	png, err := base64.StdEncoding.DecodeString(res.QRBody)
	if err != nil || !bytes.Equal(png, h.fake.PNG()) {
		t.Fatalf("qrBody is not the provider's PNG: %v", err)
	}
	wantExp := h.clock.Now().Add(15 * time.Minute).UTC().Format(time.RFC3339)
	if res.ID == "" || res.MerchantReferenceNumber != "ORDER-1" || res.Amount != "500.00" || res.Currency != "PHP" || res.ExpiresAt != wantExp {
		t.Fatalf("response %+v (want expiresAt %s)", res, wantExp)
	}
	if rec.Header().Get("Content-Type") != "application/json" || rec.Header().Get(proxy.HeaderTransactionID) != res.ID ||
		rec.Header().Get(proxy.HeaderExpiresAt) != wantExp || rec.Header().Get(proxy.HeaderIdempotentReplayed) != "" {
		t.Fatalf("headers %v", rec.Header())
	}
	calls := h.fake.CallsTo("/v1/pay/qr")
	if len(calls) != 1 || !calls[0].Authorized {
		t.Fatalf("provider calls %+v", calls)
	}
	// The provider received exactly the canonical request with the default
	// merchant's activation code, in the documented field order.
	want := `{"activationCode":"A9X4-B7P2-Q6Z8-M3L5","currency":"PHP","amount":"500.00","merchantReferenceNumber":"ORDER-1"}`
	if string(calls[0].Plaintext) != want {
		t.Fatalf("provider decrypted %s, want %s", calls[0].Plaintext, want)
	}
	if got := calls[0].Header.Get("Authorization"); got != "Basic "+base64.StdEncoding.EncodeToString([]byte(testSecretKey+":")) {
		t.Fatalf("Authorization %q", got)
	}
	if h.obs.get("upstream:create_qr:200") != 1 || h.obs.get("response:create_qr:OK:") != 1 {
		t.Fatalf("observer %v", h.obs.n)
	}
}

func TestCreateQRNamedMerchant(t *testing.T) {
	h := newHarness(t, hopts{})
	rec := h.do("POST", "/v1/pay/qr", `{"amount":"1.00","currency":"PHP","merchantReferenceNumber":"m-2","activationCode":"`+testOtherMerchant+`"}`)
	if rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	if pt := string(h.fake.CallsTo("/v1/pay/qr")[0].Plaintext); !strings.Contains(pt, `"activationCode":"`+testOtherMerchant+`"`) {
		t.Fatalf("provider got %s", pt)
	}
	rec = h.do("POST", "/v1/pay/qr", `{"amount":"1.00","currency":"PHP","merchantReferenceNumber":"m-3","activationCode":"AAAA-BBBB-CCCC-DDDD"}`)
	if e := decodeErr(t, rec.Body.Bytes()); rec.Code != 400 || e.Error.Code != CodeUnknownMerchant || e.Error.Field != "activationCode" {
		t.Fatalf("unknown merchant: %d %s", rec.Code, rec.Body)
	}
	if strings.Contains(rec.Body.String(), "AAAA-BBBB") {
		t.Fatal("error echoes the activation code")
	}
}

func TestCreateQRPNG(t *testing.T) {
	h := newHarness(t, hopts{})
	rec := h.do("POST", "/v1/pay/qr", createBody("PNG-1"), "Accept: image/png")
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "image/png" {
		t.Fatalf("status %d type %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	if !bytes.Equal(rec.Body.Bytes(), h.fake.PNG()) || !bytes.HasPrefix(rec.Body.Bytes(), []byte("\x89PNG\r\n\x1a\n")) {
		t.Fatal("body is not the PNG decoded from qrBody")
	}
	if rec.Header().Get(proxy.HeaderTransactionID) == "" || rec.Header().Get(proxy.HeaderExpiresAt) == "" {
		t.Fatalf("a PNG answer must carry the id and expiry in headers: %v", rec.Header())
	}
	// The replay can be asked for as JSON.
	rec = h.do("POST", "/v1/pay/qr", createBody("PNG-1"))
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/json" || rec.Header().Get(proxy.HeaderIdempotentReplayed) != "true" {
		t.Fatalf("replay as JSON: %d %v", rec.Code, rec.Header())
	}
}

func TestWantsPNG(t *testing.T) {
	for accept, want := range map[string]bool{
		"":                                      false,
		"*/*":                                   false,
		"application/json":                      false,
		"image/png":                             true,
		"image/*":                               true,
		"image/png, application/json":           true,
		"application/json, image/png":           false,
		"image/png;q=0.5, application/json":     false,
		"application/json;q=0.1, image/png":     true,
		"image/png;q=0":                         false,
		"text/html, image/png;q=0.9, */*;q=0.8": true,
		"image/webp":                            false,
	} {
		if got := wantsPNG(accept); got != want {
			t.Errorf("wantsPNG(%q) = %v, want %v", accept, got, want)
		}
	}
}

// Every validation rule answers 400 (or its own status) with a stable code
// and the field, and nothing goes upstream.
func TestCreateQRRejectsBeforeUpstream(t *testing.T) {
	h := newHarness(t, hopts{})
	tests := []struct {
		name, method, path, body, ctype string
		status                          int
		code, field                     string
	}{
		{"not json", "POST", "/v1/pay/qr", `amount=1`, "application/json", 400, policy.CodeInvalidJSON, ""},
		{"unknown field", "POST", "/v1/pay/qr", `{"amount":"1.00","currency":"PHP","merchantReferenceNumber":"a","tip":"1"}`, "", 400, policy.CodeUnknownField, "tip"},
		{"missing amount", "POST", "/v1/pay/qr", `{"currency":"PHP","merchantReferenceNumber":"a"}`, "", 400, policy.CodeMissingField, "amount"},
		{"amount number", "POST", "/v1/pay/qr", `{"amount":500,"currency":"PHP","merchantReferenceNumber":"a"}`, "", 400, policy.CodeInvalidAmount, "amount"},
		{"amount one decimal", "POST", "/v1/pay/qr", `{"amount":"5.5","currency":"PHP","merchantReferenceNumber":"a"}`, "", 400, policy.CodeInvalidAmount, "amount"},
		{"amount too small", "POST", "/v1/pay/qr", `{"amount":"0.99","currency":"PHP","merchantReferenceNumber":"a"}`, "", 400, policy.CodeAmountOutOfRange, "amount"},
		{"amount too large", "POST", "/v1/pay/qr", `{"amount":"100000.00","currency":"PHP","merchantReferenceNumber":"a"}`, "", 400, policy.CodeAmountOutOfRange, "amount"},
		{"currency lowercase", "POST", "/v1/pay/qr", `{"amount":"1.00","currency":"php","merchantReferenceNumber":"a"}`, "", 400, policy.CodeInvalidCurrency, "currency"},
		{"currency not allowed", "POST", "/v1/pay/qr", `{"amount":"1.00","currency":"USD","merchantReferenceNumber":"a"}`, "", 400, policy.CodeUnsupportedCurrency, "currency"},
		{"reference too long", "POST", "/v1/pay/qr", `{"amount":"1.00","currency":"PHP","merchantReferenceNumber":"` + strings.Repeat("a", 37) + `"}`, "", 400, policy.CodeInvalidReference, "merchantReferenceNumber"},
		{"reference charset", "POST", "/v1/pay/qr", `{"amount":"1.00","currency":"PHP","merchantReferenceNumber":"a_b"}`, "", 400, policy.CodeInvalidReference, "merchantReferenceNumber"},
		{"activation code format", "POST", "/v1/pay/qr", `{"amount":"1.00","currency":"PHP","merchantReferenceNumber":"a","activationCode":"abc"}`, "", 400, policy.CodeInvalidActivationCode, "activationCode"},
		{"unknown merchant", "POST", "/v1/pay/qr", `{"amount":"1.00","currency":"PHP","merchantReferenceNumber":"a","activationCode":"QQQQ-QQQQ-QQQQ-QQQQ"}`, "", 400, CodeUnknownMerchant, "activationCode"},
		{"form content type", "POST", "/v1/pay/qr", createBody("a"), "application/x-www-form-urlencoded", 415, proxy.CodeUnsupportedMedia, ""},
		{"too large", "POST", "/v1/pay/qr", `{"amount":"` + strings.Repeat("1", maxRequestBody) + `"}`, "", 413, proxy.CodeBodyTooLarge, ""},
		{"PUT create", "PUT", "/v1/pay/qr", "", "", 405, proxy.CodeMethodNotAllowed, ""},
		{"unknown path", "GET", "/v1/pay/other", "", "", 404, CodeNotFound, ""},
		{"POST ping", "POST", "/ping", "", "", 405, proxy.CodeMethodNotAllowed, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := request(tc.method, tc.path, tc.body)
			if tc.ctype != "" {
				r.Header.Set("Content-Type", tc.ctype)
			}
			rec := newRecorderFor(h, r)
			e := decodeErr(t, rec.Body.Bytes())
			if rec.Code != tc.status || e.Error.Code != tc.code || e.Error.Field != tc.field || e.Error.Message == "" {
				t.Fatalf("got %d %s, want %d %s field %q", rec.Code, rec.Body, tc.status, tc.code, tc.field)
			}
			if tc.status == 405 && rec.Header().Get("Allow") == "" {
				t.Fatal("405 without Allow")
			}
		})
	}
	if n := len(h.fake.Calls()); n != 0 {
		t.Fatalf("%d calls reached the provider", n)
	}
}

func newRecorderFor(h *harness, r *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.out.ServeHTTP(rec, r)
	return rec
}

// Every upstream answer maps to the documented status and code, keeping the
// provider's error object.
func TestUpstreamStatusMapping(t *testing.T) {
	tests := []struct {
		name   string
		fault  fakemodulus.Fault
		status int
		code   string
		upst   int
	}{
		{"400", fakemodulus.Fault{Status: 400}, 400, CodeUpstreamRejected, 400},
		{"404", fakemodulus.Fault{Status: 404}, 404, CodeUpstreamRejected, 404},
		{"409", fakemodulus.Fault{Status: 409}, 409, CodeUpstreamRejected, 409},
		{"422", fakemodulus.Fault{Status: 422}, 422, CodeUpstreamRejected, 422},
		{"401", fakemodulus.Fault{Status: 401}, 401, CodeUpstreamUnauthorized, 401},
		{"403", fakemodulus.Fault{Status: 403}, 403, CodeUpstreamUnauthorized, 403},
		{"429 without retries", fakemodulus.Fault{Status: 429, RetryAfter: "30"}, 429, CodeUpstreamRateLimited, 429},
		{"500", fakemodulus.Fault{Status: 500}, 502, CodeUpstreamUnavailable, 500},
		{"503", fakemodulus.Fault{Status: 503}, 502, CodeUpstreamUnavailable, 503},
		{"302", fakemodulus.Fault{Status: 302, Body: "{}"}, 502, CodeUpstreamBadResponse, 0},
		{"undecryptable token", fakemodulus.Fault{BadToken: true}, 502, CodeUpstreamBadResponse, 0},
		{"200 without token", fakemodulus.Fault{Status: 200, Body: `{"id":"x"}`}, 502, CodeUpstreamBadResponse, 0},
		{"3 MB answer", fakemodulus.Fault{Status: 200, Body: `{"Token":"` + strings.Repeat("x", 3<<20) + `"}`}, 502, CodeUpstreamBadResponse, 0},
		{"reset after read", fakemodulus.Fault{ResetAfterRead: true}, 502, CodeUpstreamUnavailable, 0},
		{"hang past timeout", fakemodulus.Fault{Hang: true}, 504, CodeUpstreamTimeout, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, hopts{noRetries: true, timeout: 200 * time.Millisecond})
			h.fake.Fail(tc.fault)
			rec := h.do("POST", "/v1/pay/qr", createBody("MAP-1"))
			e := decodeErr(t, rec.Body.Bytes())
			if rec.Code != tc.status || e.Error.Code != tc.code {
				t.Fatalf("got %d %s, want %d %s", rec.Code, rec.Body, tc.status, tc.code)
			}
			if tc.upst != 0 {
				u := e.Error.Upstream
				if u == nil || u.Status != tc.upst || u.Code == "" || u.ReferenceNumber == "" {
					t.Fatalf("upstream object %+v", u)
				}
			}
			if tc.status == 429 && rec.Header().Get("Retry-After") != "30" {
				t.Fatalf("Retry-After %q", rec.Header().Get("Retry-After"))
			}
			// No retry: one call. A call cut off by the 200 ms timeout
			// may, on a loaded machine, not have reached the provider's
			// handler yet; it never counts twice.
			if n := len(h.fake.Calls()); n != 1 && !(tc.status == http.StatusGatewayTimeout && n == 0) {
				t.Fatalf("%d provider calls, want 1 (no retry)", n)
			}
		})
	}
}

// An answer too large to use is a bad response, not an unavailable
// provider: it answered, so the breaker does not count it (the error
// table of docs/outbound-api.md).
func TestOversizedAnswerDoesNotOpenTheBreaker(t *testing.T) {
	h := newHarness(t, hopts{noRetries: true, breaker: BreakerSettings{Failures: 2, Window: time.Minute, Open: time.Minute, Probes: 1}})
	huge := fakemodulus.Fault{Status: 200, Body: `{"Token":"` + strings.Repeat("x", 3<<20) + `"}`}
	h.fake.Fail(huge, huge, huge)
	for i := range 3 {
		rec := h.do("POST", "/v1/pay/qr", createBody(fmt.Sprintf("HUGE-%d", i)))
		if e := decodeErr(t, rec.Body.Bytes()); rec.Code != 502 || e.Error.Code != CodeUpstreamBadResponse {
			t.Fatalf("oversized answer %d: %d %s", i, rec.Code, rec.Body)
		}
	}
	if rec := h.do("POST", "/v1/pay/qr", createBody("HUGE-OK")); rec.Code != 200 {
		t.Fatalf("after three oversized answers: %d %s (breaker transitions %v)", rec.Code, rec.Body, h.transitions())
	}
	if tr := h.transitions(); len(tr) != 0 {
		t.Fatalf("breaker transitions %v, want none", tr)
	}
}

func TestPing(t *testing.T) {
	h := newHarness(t, hopts{})
	rec := h.do("GET", "/ping", "")
	if rec.Code != 200 || rec.Body.String() != "Pong!" {
		t.Fatalf("ping: %d %q", rec.Code, rec.Body)
	}
	c := h.fake.CallsTo("/ping")
	if len(c) != 1 || c[0].Header.Get("Authorization") != "" {
		t.Fatalf("ping must be unauthenticated: %+v", c)
	}
	h.fake.Fail(fakemodulus.Fault{Path: "/ping", Status: 503})
	if rec := h.do("GET", "/ping", ""); rec.Code != 502 {
		t.Fatalf("ping on a 503: %d", rec.Code)
	}
}

func TestTokenOf(t *testing.T) {
	for body, want := range map[string]string{
		`{"Token":"a.b.c.d.e"}`:           "a.b.c.d.e",
		" {\"Token\":\"a.b.c.d.e\"}\n":    "a.b.c.d.e",
		`{ "Token" : "a.b.c.d.e" }`:       "a.b.c.d.e",
		`{"other":1,"Token":"a.b.c.d.e"}`: "a.b.c.d.e",
		`{"Token":"a\u002eb"}`:            "a.b",
		`{"Token":""}`:                    "",
		`{"token":"x"}`:                   "",
		`{"Token":"x"} trailing`:          "",
		`{"Token":"x","Token":"y"}`:       "y",
	} {
		got, ok := tokenOf([]byte(body))
		if got != want || ok != (want != "") {
			t.Errorf("tokenOf(%s) = %q %v, want %q", body, got, ok, want)
		}
	}
}

// The hand-written answer encoding is byte for byte what encoding/json writes.
func TestEncodeAnswerMatchesEncodingJSON(t *testing.T) {
	for _, id := range []string{"a78efd32-de3b-4854-b599-11ae9f98f97e", "id with \"quote\"", "<tag>&", "naïve", "tab\there", ""} {
		r := CreateQRResponse{ID: id, QRBody: "iVBORw0KGgo+/==", MerchantReferenceNumber: "ORDER-1", Amount: "500.00", Currency: "PHP", ExpiresAt: "2026-01-15T10:45:00Z"}
		want, _ := json.Marshal(r)
		if got := encodeAnswer(r); string(got) != string(want) {
			t.Errorf("id %q:\n got %s\nwant %s", id, got, want)
		}
	}
}

func TestIsBase64(t *testing.T) {
	for s, want := range map[string]bool{
		"iVBORw0KGgo=": true, "iVBORw0KGgo": true, "iVBO": true, "iVBORw==": true, "QQ": true,
		"": false, "=": false, "iVBORw0KGgo==": false, "iVB": true, "iVBOR": false, "iV-_": false, "iV BO": false, "iVBO===": false,
	} {
		if got := isBase64(s); got != want {
			t.Errorf("isBase64(%q) = %v", s, got)
		}
		if _, err := decodeQRBody(s); want && s != "" && err != nil {
			t.Errorf("%q passes the check but does not decode: %v", s, err)
		}
	}
}

// A huge declared Content-Length is refused before anything is read or
// allocated, on every endpoint that takes a body.
func TestFalseContentLengthRefused(t *testing.T) {
	h := newHarness(t, hopts{})
	for _, path := range []string{"/v1/pay/qr", "/v1/webhooks"} {
		r := request("POST", path, createBody("a"))
		r.ContentLength = 1 << 40
		rec := newRecorderFor(h, r)
		if e := decodeErr(t, rec.Body.Bytes()); rec.Code != 413 || e.Error.Code != proxy.CodeBodyTooLarge {
			t.Fatalf("%s: %d %s", path, rec.Code, rec.Body)
		}
	}
	if n := len(h.fake.Calls()); n != 0 {
		t.Fatalf("%d calls reached the provider", n)
	}
	// The shared reader sizes its buffer within the limit whatever the header says.
	r := httptest.NewRequest("POST", "/", strings.NewReader("{}"))
	r.ContentLength = 1 << 30
	b, err := proxy.ReadBody(httptest.NewRecorder(), r, 1024)
	if err != nil || string(b) != "{}" || cap(b) > 1024 {
		t.Fatalf("readBody: %q (cap %d) %v", b, cap(b), err)
	}
}
