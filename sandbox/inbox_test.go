package sandbox

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/qrphgate/qrphgate/crypto"
)

// deliver posts to the inbox in the gateway's delivery format.
func (h *harness) deliver(body, id, attempt, signature string, extra map[string]string) (*http.Response, []byte) {
	h.t.Helper()
	r, _ := http.NewRequest(http.MethodPost, h.srv.URL+"/sandbox/inbox", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	if id != "" {
		r.Header.Set("Webhook-Id", id)
	}
	r.Header.Set("Webhook-Timestamp", "1768473000")
	r.Header.Set("Webhook-Attempt", attempt)
	if signature != "" {
		r.Header.Set("Webhook-Signature", signature)
	}
	for k, v := range extra {
		r.Header.Set(k, v)
	}
	return h.send(r)
}

func (h *harness) inbox() []InboxEntry {
	h.t.Helper()
	resp, body := h.request(http.MethodGet, "/sandbox/inbox", "", "", false)
	if resp.StatusCode != http.StatusOK {
		h.t.Fatalf("inbox: %d %s", resp.StatusCode, body)
	}
	return decodeInto[map[string][]InboxEntry](h.t, body)["entries"]
}

const samplePayload = `{"action":"QRPH_SUCCESS","status":"SUCCESS","transactionId":"a78efd32-de3b-4854-b599-11ae9f98f97e","referenceNumber":"ORDER-1","amount":50000,"currency":"PHP","timestamp":"2026-01-15T10:30:00Z"}`

func TestInboxAcceptsGatewayDeliveries(t *testing.T) {
	h := newHarness(t, nil)
	resp, body := h.deliver(samplePayload, "evt_1", "1", "", map[string]string{"Modulus-Activation-Code": "MERCHANT_ABC_123"})
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != `{"received":true}` {
		t.Fatalf("deliver: %d %s", resp.StatusCode, body)
	}
	h.deliver(samplePayload, "evt_1", "2", "", nil)
	entries := h.inbox()
	if len(entries) != 2 {
		t.Fatalf("%d entries", len(entries))
	}
	e := entries[0]
	if e.WebhookID != "evt_1" || e.Attempt != "1" || e.Timestamp != "1768473000" || e.ActivationCode != "MERCHANT_ABC_123" ||
		e.Signature != SignatureUnchecked || !e.Accepted || e.Duplicate || e.Seq != 1 {
		t.Fatalf("entry %+v", e)
	}
	var got, want map[string]any
	_ = json.Unmarshal(e.Body, &got)
	_ = json.Unmarshal([]byte(samplePayload), &want)
	if len(got) != len(want) || got["referenceNumber"] != "ORDER-1" || got["amount"] != float64(50000) {
		t.Fatalf("body %s", e.Body)
	}
	if !entries[1].Duplicate || entries[1].Attempt != "2" {
		t.Fatalf("redelivery not flagged as a duplicate: %+v", entries[1])
	}

	for _, tc := range []struct {
		name, ctype, body, id string
		status                int
	}{
		{"form body", "application/x-www-form-urlencoded", "a=b", "evt_2", 415},
		{"not an object", "application/json", `[1,2]`, "evt_2", 400},
		{"not JSON", "application/json", `{"a":`, "evt_2", 400},
		{"no Webhook-Id", "application/json", samplePayload, "", 400},
		{"the provider's encrypted format", "application/json", `{"data":"eyJhbGciOiJBMjU2S1ciLCJlbmMiOiJBMjU2Q0JDLUhTNTEyIn0.a.b.c.d"}`, "evt_2", 400},
		{"too large", "application/json", `{"a":"` + strings.Repeat("x", maxInboxBody) + `"}`, "evt_2", 413},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := http.NewRequest(http.MethodPost, h.srv.URL+"/sandbox/inbox", strings.NewReader(tc.body))
			r.Header.Set("Content-Type", tc.ctype)
			if tc.id != "" {
				r.Header.Set("Webhook-Id", tc.id)
			}
			if resp, body := h.send(r); resp.StatusCode != tc.status {
				t.Fatalf("%d, want %d: %s", resp.StatusCode, tc.status, body)
			}
		})
	}
	if n := len(h.inbox()); n != 2 {
		t.Fatalf("refused deliveries were listed: %d entries", n)
	}

	// Clear, from the page; a cross-site page may not.
	r, _ := http.NewRequest(http.MethodDelete, h.srv.URL+"/sandbox/inbox", nil)
	r.Header.Set("Origin", "https://evil.example")
	if resp, _ := h.send(r); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site clear: %d", resp.StatusCode)
	}
	if resp, _ := h.request(http.MethodDelete, "/sandbox/inbox", "", "", false); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("clear: %d", resp.StatusCode)
	}
	if n := len(h.inbox()); n != 0 {
		t.Fatalf("%d entries after clear", n)
	}
}

func TestInboxVerifiesSignatures(t *testing.T) {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" // the Standard Webhooks spec's example secret
	h := newHarness(t, func(c *Config) { c.InboxSignSecret = secret })
	signer, err := crypto.NewWebhookSigner("sign_secret", secret)
	if err != nil {
		t.Fatal(err)
	}
	sig := signer.Sign("evt_1", "1768473000", []byte(samplePayload))
	if resp, body := h.deliver(samplePayload, "evt_1", "1", "v1,bm9wZQ== "+sig, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("signed delivery: %d %s", resp.StatusCode, body)
	}
	if resp, _ := h.deliver(samplePayload, "evt_2", "1", sig, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("signature of another id: %d", resp.StatusCode)
	}
	if resp, _ := h.deliver(samplePayload+" ", "evt_1", "1", sig, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("signature over another body: %d", resp.StatusCode)
	}
	if resp, _ := h.deliver(samplePayload, "evt_3", "1", "", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("unsigned delivery: %d", resp.StatusCode)
	}
	entries := h.inbox()
	want := []struct {
		sig      string
		accepted bool
	}{{SignatureVerified, true}, {SignatureInvalid, false}, {SignatureInvalid, false}, {SignatureMissing, false}}
	if len(entries) != len(want) {
		t.Fatalf("%d entries", len(entries))
	}
	for i, w := range want {
		if entries[i].Signature != w.sig || entries[i].Accepted != w.accepted || entries[i].Duplicate {
			t.Errorf("entry %d: %+v, want %s accepted=%v", i, entries[i], w.sig, w.accepted)
		}
	}
}
