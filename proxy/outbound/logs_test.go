package outbound

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/qrphgate/qrphgate/internal/fakemodulus"
)

// Keys, the Basic header, tokens, activation codes and decrypted payloads
// never appear in logs, error bodies or the status page, whatever happens.
func TestOutboundNeverLeaksSecrets(t *testing.T) {
	h := newHarness(t, hopts{retries: 1, timeout: 100 * time.Millisecond, authFailures: 2})
	var out strings.Builder
	run := func(method, path, body string, hdr ...string) {
		rec := h.do(method, path, body, hdr...)
		if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/json" || path != "/v1/pay/qr" {
			out.WriteString(rec.Body.String()) // error bodies (a success carries the QR by design)
		}
		for k, v := range rec.Header() {
			out.WriteString(k + ": " + strings.Join(v, ",") + "\n")
		}
	}
	run("POST", "/v1/pay/qr", createBody("L-1"))
	run("POST", "/v1/pay/qr", createBody("L-1"))
	run("POST", "/v1/pay/qr", createBody("L-1"), "Accept: image/png")
	run("POST", "/v1/pay/qr", `{"amount":"1.00","currency":"PHP","merchantReferenceNumber":"L-2","activationCode":"QQQQ-QQQQ-QQQQ-QQQQ"}`)
	h.fake.Fail(fakemodulus.Fault{BadToken: true})
	run("POST", "/v1/pay/qr", createBody("L-3"))
	h.fake.Fail(fakemodulus.Fault{Status: 500, Body: `{"code":"500","error":"boom for ` + testSecretKey + `"}`})
	run("POST", "/v1/pay/qr", createBody("L-4"))
	h.fake.Fail(fakemodulus.Fault{ResetAfterRead: true})
	run("POST", "/v1/pay/qr", createBody("L-5"))
	h.fake.Fail(fakemodulus.Fault{Hang: true})
	run("POST", "/v1/pay/qr", createBody("L-6"))
	run("POST", "/v1/webhooks", `{"callbackUrl":"https://a.example/h","webhookAction":"QRPH_SUCCESS"}`, "Activation-Code: MERCHANT_1")
	h.fake.Fail(fakemodulus.Fault{Status: 401}, fakemodulus.Fault{Status: 401})
	run("POST", "/v1/pay/qr", createBody("L-7"))
	run("GET", "/v1/webhooks", "")
	run("POST", "/v1/pay/qr", createBody("L-8"))
	st, _ := json.Marshal(h.out.Status(t.Context()))
	out.Write(st)
	for _, e := range h.logs.All() {
		out.WriteString(e.Message + " " + fmt.Sprint(e.ContextMap()) + "\n")
	}
	if h.logs.Len() < 10 {
		t.Fatalf("only %d log entries: the scenarios did not run", h.logs.Len())
	}

	text := out.String()
	secrets := map[string]string{
		"secret key":        testSecretKey,
		"Basic credential":  base64.StdEncoding.EncodeToString([]byte(testSecretKey + ":")),
		"encryption key":    testEncryptionKey,
		"activation code":   testActivationCode,
		"other merchant":    testOtherMerchant,
		"unknown code sent": "QQQQ-QQQQ-QQQQ-QQQQ",
		"QR image":          base64.StdEncoding.EncodeToString(h.fake.PNG())[:40],
	}
	for i, tok := range h.fake.Tokens() {
		secrets[fmt.Sprintf("token %d", i)] = tok
		secrets[fmt.Sprintf("token %d tail", i)] = tok[len(tok)-43:]
	}
	if len(h.fake.Tokens()) < 5 {
		t.Fatalf("only %d tokens seen", len(h.fake.Tokens()))
	}
	for what, s := range secrets {
		if strings.Contains(text, s) {
			t.Errorf("the %s appears in logs, errors or status", what)
		}
	}
	// The logs say what happened, with references and transaction ids.
	if !strings.Contains(text, "L-1") || !strings.Contains(text, "transaction_id") || !strings.Contains(text, "upstream_unauthorized") {
		t.Fatalf("logs lack the useful context:\n%s", text)
	}
}

// Every call's log line carries the documented fields.
func TestOutboundLogFields(t *testing.T) {
	h := newHarness(t, hopts{noRetries: true})
	h.do("POST", "/v1/pay/qr", createBody("LF-1"))
	h.do("POST", "/v1/pay/qr", createBody("LF-1"))
	h.fake.Fail(fakemodulus.Fault{Status: 500})
	h.do("POST", "/v1/pay/qr", createBody("LF-2"))
	h.do("GET", "/v1/webhooks", "")
	h.do("GET", "/ping", "")
	want := map[string][]string{
		"QR created":              {"endpoint", "status", "duration", "reference", "transaction_id", "replayed", "attempts"},
		"QR replayed":             {"endpoint", "status", "duration", "reference", "transaction_id", "replayed", "attempts"},
		"outbound call failed":    {"endpoint", "status", "duration", "reference", "code", "upstream_status"},
		"webhook management call": {"endpoint", "status", "duration", "attempts"},
		"ping":                    {"endpoint", "status", "duration", "attempts"},
	}
	for _, e := range h.logs.All() {
		fields, ok := want[e.Message]
		if !ok {
			continue
		}
		delete(want, e.Message)
		m := e.ContextMap()
		for _, f := range fields {
			if _, ok := m[f]; !ok {
				t.Errorf("%q lacks %s: %v", e.Message, f, m)
			}
		}
		if e.Message == "QR created" && m["attempts"] != int64(1) {
			t.Errorf("QR created after %v attempts, want 1", m["attempts"])
		}
	}
	if len(want) > 0 {
		t.Fatalf("no log line for %v", want)
	}
}
