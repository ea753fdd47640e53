package outbound

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/qrphgate/qrphgate/internal/fakemodulus"
	"github.com/qrphgate/qrphgate/policy"
	"github.com/qrphgate/qrphgate/proxy"
)

func TestWebhookManagementPassthrough(t *testing.T) {
	h := newHarness(t, hopts{})
	rec := h.do("POST", "/v1/webhooks", `{"webhookAction":"QRPH_SUCCESS","callbackUrl":"https://pay.example.com/webhooks/modulus"}`, "Activation-Code: MERCHANT_ABC_123")
	if rec.Code != 201 {
		t.Fatalf("create: %d %s", rec.Code, rec.Body)
	}
	var created map[string]string
	if err := json.Unmarshal(rec.Body.Bytes(), &created); err != nil || created["id"] == "" || created["webhookStatus"] != "ENABLED" {
		t.Fatalf("create answer %s", rec.Body)
	}
	c := h.fake.CallsTo("/v1/webhooks")[0]
	if !c.Authorized || c.Header.Get("Activation-Code") != "MERCHANT_ABC_123" {
		t.Fatalf("credentials or activation-code header not forwarded: %v", c.Header)
	}
	if string(c.Plaintext) != `{"callbackUrl":"https://pay.example.com/webhooks/modulus","webhookAction":"QRPH_SUCCESS"}` {
		t.Fatalf("provider got %s", c.Plaintext)
	}
	id := created["id"]

	if rec := h.do("GET", "/v1/webhooks", ""); rec.Code != 200 || !strings.Contains(rec.Body.String(), id) {
		t.Fatalf("list: %d %s", rec.Code, rec.Body)
	}
	if rec := h.do("PUT", "/v1/webhooks/"+id, `{"webhookStatus":"DISABLED"}`); rec.Code != 200 || !strings.Contains(rec.Body.String(), `"DISABLED"`) {
		t.Fatalf("update: %d %s", rec.Code, rec.Body)
	}
	if rec := h.do("POST", "/v1/webhooks/qrph/simulate", `{"qrBody":"00020101021228820011ph.ppmi.p2m0111CUOBPHM2XXX6304ABCD","useCase":"SUCCESS"}`); rec.Code != 200 {
		t.Fatalf("simulate: %d %s", rec.Code, rec.Body)
	}
	if rec := h.do("DELETE", "/v1/webhooks/"+id, ""); rec.Code != 204 || rec.Body.Len() != 0 {
		t.Fatalf("delete: %d %q", rec.Code, rec.Body)
	}
	rec = h.do("DELETE", "/v1/webhooks/"+id, "")
	if e := decodeErr(t, rec.Body.Bytes()); rec.Code != 404 || e.Error.Code != CodeUpstreamRejected || e.Error.Upstream.Code != "20000004" {
		t.Fatalf("delete again: %d %s", rec.Code, rec.Body)
	}
	for _, c := range h.fake.Calls() {
		if !c.Authorized {
			t.Fatalf("%s %s without credentials", c.Method, c.Path)
		}
	}
}

func TestWebhookManagementValidation(t *testing.T) {
	tests := []struct {
		name, method, path, body, header string
		status                           int
		code, field                      string
	}{
		{"unknown field", "POST", "/v1/webhooks", `{"callbackUrl":"https://a.example","webhookAction":"QRPH_SUCCESS","secret":"x"}`, "", 400, policy.CodeUnknownField, "secret"},
		{"status on create", "POST", "/v1/webhooks", `{"callbackUrl":"https://a.example","webhookAction":"QRPH_SUCCESS","webhookStatus":"DISABLED"}`, "", 400, policy.CodeUnknownField, "webhookStatus"},
		{"missing callback", "POST", "/v1/webhooks", `{"webhookAction":"QRPH_SUCCESS"}`, "", 400, policy.CodeMissingField, "callbackUrl"},
		{"relative callback", "POST", "/v1/webhooks", `{"callbackUrl":"/hook","webhookAction":"QRPH_SUCCESS"}`, "", 400, CodeInvalidCallbackURL, "callbackUrl"},
		{"callback with credentials", "POST", "/v1/webhooks", `{"callbackUrl":"https://u:p@a.example/","webhookAction":"QRPH_SUCCESS"}`, "", 400, CodeInvalidCallbackURL, "callbackUrl"},
		{"ftp callback", "POST", "/v1/webhooks", `{"callbackUrl":"ftp://a.example/","webhookAction":"QRPH_SUCCESS"}`, "", 400, CodeInvalidCallbackURL, "callbackUrl"},
		{"unknown action", "POST", "/v1/webhooks", `{"callbackUrl":"https://a.example","webhookAction":"QRPH_REFUND"}`, "", 400, CodeInvalidWebhookAction, "webhookAction"},
		{"action as array", "POST", "/v1/webhooks", `{"callbackUrl":"https://a.example","webhookAction":["QRPH_SUCCESS"]}`, "", 400, policy.CodeInvalidJSON, "webhookAction"},
		{"bad activation-code header", "POST", "/v1/webhooks", `{"callbackUrl":"https://a.example","webhookAction":"QRPH_SUCCESS"}`, "Activation-Code: a b", 400, CodeInvalidHeader, "Activation-Code"},
		{"empty update", "PUT", "/v1/webhooks/abc", `{}`, "", 400, policy.CodeMissingField, ""},
		{"unknown status", "PUT", "/v1/webhooks/abc", `{"webhookStatus":"PAUSED"}`, "", 400, CodeInvalidWebhookStatus, "webhookStatus"},
		{"bad id", "PUT", "/v1/webhooks/a%2Fb", `{"webhookStatus":"ENABLED"}`, "", 400, CodeInvalidWebhookID, "id"},
		{"empty id on DELETE", "DELETE", "/v1/webhooks/", "", "", 400, CodeInvalidWebhookID, "id"},
		{"empty id on PUT", "PUT", "/v1/webhooks/", `{"webhookStatus":"ENABLED"}`, "", 400, CodeInvalidWebhookID, "id"},
		{"id with a slash", "DELETE", "/v1/webhooks/abc/", "", "", 400, CodeInvalidWebhookID, "id"},
		{"unknown use case", "POST", "/v1/webhooks/qrph/simulate", `{"qrBody":"000201","useCase":"MAYBE"}`, "", 400, CodeInvalidUseCase, "useCase"},
		{"png instead of text", "POST", "/v1/webhooks/qrph/simulate", `{"qrBody":"iVBORw0KGgoAAAANSUhEUg","useCase":"SUCCESS"}`, "", 400, CodeInvalidQRBody, "qrBody"},
		{"control characters", "POST", "/v1/webhooks/qrph/simulate", `{"qrBody":"0002\u0001","useCase":"SUCCESS"}`, "", 400, CodeInvalidQRBody, "qrBody"},
		{"not json", "POST", "/v1/webhooks", `[1]`, "", 400, policy.CodeInvalidJSON, ""},
		{"GET one webhook", "GET", "/v1/webhooks/abc", "", "", 405, proxy.CodeMethodNotAllowed, ""},
		{"DELETE the list", "DELETE", "/v1/webhooks", "", "", 405, proxy.CodeMethodNotAllowed, ""},
		{"GET simulate", "GET", "/v1/webhooks/qrph/simulate", "", "", 405, proxy.CodeMethodNotAllowed, ""},
	}
	h := newHarness(t, hopts{})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var hdr []string
			if tc.header != "" {
				hdr = append(hdr, tc.header)
			}
			rec := h.do(tc.method, tc.path, tc.body, hdr...)
			e := decodeErr(t, rec.Body.Bytes())
			if rec.Code != tc.status || e.Error.Code != tc.code || e.Error.Field != tc.field {
				t.Fatalf("got %d %s, want %d %s %q", rec.Code, rec.Body, tc.status, tc.code, tc.field)
			}
		})
	}
	if n := len(h.fake.Calls()); n != 0 {
		t.Fatalf("%d calls reached the provider", n)
	}
}

func TestWebhookManagementProduction(t *testing.T) {
	h := newHarness(t, hopts{env: policy.Production})
	rec := h.do("POST", "/v1/webhooks", `{"callbackUrl":"http://pay.example.com/hook","webhookAction":"QRPH_SUCCESS"}`)
	if e := decodeErr(t, rec.Body.Bytes()); rec.Code != 400 || e.Error.Code != CodeInvalidCallbackURL {
		t.Fatalf("http callback in production: %d %s", rec.Code, rec.Body)
	}
	rec = h.do("POST", "/v1/webhooks/qrph/simulate", `{"qrBody":"000201","useCase":"SUCCESS"}`)
	if e := decodeErr(t, rec.Body.Bytes()); rec.Code != 400 || e.Error.Code != CodeSandboxOnly {
		t.Fatalf("simulate in production: %d %s", rec.Code, rec.Body)
	}
	if rec := h.do("POST", "/v1/webhooks", `{"callbackUrl":"https://pay.example.com/hook","webhookAction":"QRPH_DECLINED"}`); rec.Code != 201 {
		t.Fatalf("https callback: %d %s", rec.Code, rec.Body)
	}
}

func TestWebhookManagementNotConfigured(t *testing.T) {
	h := newHarness(t, hopts{env: policy.Production, noWebhooks: true})
	for _, c := range [][3]string{{"GET", "/v1/webhooks", ""}, {"DELETE", "/v1/webhooks/1", ""}} {
		rec := h.do(c[0], c[1], c[2])
		if e := decodeErr(t, rec.Body.Bytes()); rec.Code != 501 || e.Error.Code != CodeWebhooksNotConfigured || !strings.Contains(e.Error.Message, "webhooks_url") {
			t.Fatalf("%s %s: %d %s", c[0], c[1], rec.Code, rec.Body)
		}
	}
	if n := len(h.fake.Calls()); n != 0 {
		t.Fatalf("%d calls", n)
	}
	if st := h.out.Status(t.Context()); st.WebhooksURL != "" || len(st.Breakers) != 1 {
		t.Fatalf("status %+v", st)
	}
}

func TestWebhookManagementJWEPayload(t *testing.T) {
	h := newHarness(t, hopts{payload: WebhooksPayloadJWE})
	if rec := h.do("PUT", "/v1/webhooks/x1", `{"callbackUrl":"https://a.example/h"}`); rec.Code != 404 {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	c := h.fake.CallsTo("/v1/webhooks/x1")
	if len(c) != 1 || string(c[0].Plaintext) != `{"callbackUrl":"https://a.example/h"}` || len(h.fake.Tokens()) != 1 {
		t.Fatalf("the provider did not receive the body as a JWE: %+v", c)
	}
}

// The provider's answer reaches the app only as JSON, under our own
// Content-Type: a body that is not JSON is 502 upstream_bad_response, and
// the provider's Content-Type (or any other header of its) is never copied.
func TestWebhookManagementAnswerChecked(t *testing.T) {
	h := newHarness(t, hopts{noRetries: true})
	for _, tc := range []struct {
		name  string
		fault fakemodulus.Fault
	}{
		{"an HTML page", fakemodulus.Fault{Status: 200, Body: "<html><body>maintenance</body></html>", ContentType: "text/html; charset=utf-8"}},
		{"truncated JSON", fakemodulus.Fault{Status: 200, Body: `{"webhooks":[`}},
		{"a blank body", fakemodulus.Fault{Status: 201, Body: " ", ContentType: "application/json"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h.fake.Fail(tc.fault)
			rec := h.do("GET", "/v1/webhooks", "")
			if e := decodeErr(t, rec.Body.Bytes()); rec.Code != 502 || e.Error.Code != CodeUpstreamBadResponse {
				t.Fatalf("got %d %s, want 502 upstream_bad_response", rec.Code, rec.Body)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Fatalf("Content-Type %q", ct)
			}
			if strings.Contains(rec.Body.String(), "maintenance") {
				t.Fatalf("the provider's body reached the app: %s", rec.Body)
			}
		})
	}
	t.Run("JSON under another content type", func(t *testing.T) {
		h.fake.Fail(fakemodulus.Fault{Status: 200, Body: `{"webhooks":[]}`, ContentType: "text/html"})
		rec := h.do("GET", "/v1/webhooks", "")
		if rec.Code != 200 || rec.Body.String() != `{"webhooks":[]}` || rec.Header().Get("Content-Type") != "application/json" {
			t.Fatalf("got %d %v %s", rec.Code, rec.Header(), rec.Body)
		}
	})
	if st := h.out.Status(t.Context()); st.Breakers["webhooks"].FailuresInWindow != 0 {
		t.Fatalf("an unusable answer counted toward the breaker: %+v", st.Breakers["webhooks"])
	}
}
