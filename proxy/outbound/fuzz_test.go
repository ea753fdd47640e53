package outbound

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// Webhook-management bodies come from the app: strict decoding must never
// panic, and whatever it accepts holds only allowed, valid-UTF-8 members.
func FuzzDecodeStringFields(f *testing.F) {
	for _, s := range []string{
		`{"callbackUrl":"https://a.example/h","webhookAction":"QRPH_SUCCESS"}`,
		`{"webhookStatus":"DISABLED"}`,
		`{"qrBody":"000201","useCase":"SUCCESS"}`,
		`{"callbackUrl":1}`, `{"a":"b","a":"b"}`, `[]`, `{"callbackUrl":"x"} {}`, "{\"callbackUrl\":\"\\ud800\"}",
	} {
		f.Add([]byte(s))
	}
	allowed := []string{"callbackUrl", "webhookAction", "webhookStatus", "qrBody", "useCase"}
	f.Fuzz(func(t *testing.T, body []byte) {
		fields, err := decodeStringFields(body, allowed)
		if err != nil {
			if err.Status != 400 || err.Code == "" {
				t.Fatalf("error %+v", err)
			}
			return
		}
		for k, v := range fields {
			if !strings.Contains(strings.Join(allowed, ","), k) || !utf8.ValidString(v) {
				t.Fatalf("accepted %q=%q", k, v)
			}
		}
	})
}

// Provider answers are untrusted: token extraction and error-object parsing
// must never panic, and error text stays bounded and scrubbed.
func FuzzUpstreamAnswer(f *testing.F) {
	for _, s := range []string{
		`{"Token":"a.b.c.d.e"}`, `{"code":"10000013","error":"Invalid API Key","referenceNumber":"338e"}`,
		`{"code":10000013,"message":"x"}`, `{"Token":"x\"y"}`, `{"Token":`, `null`, strings.Repeat("x", 2000),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		_, _ = tokenOf(body)
		ue := parseUpstreamError(500, body, func(s string) string { return strings.ReplaceAll(s, "sk_test_", "[REDACTED]") })
		if len(ue.Error) > maxUpstreamText+len("…") || len(ue.Code) > 64+len("…") || strings.Contains(ue.Error, "sk_test_") {
			t.Fatalf("unbounded or unscrubbed: %+v", ue)
		}
		_, _ = decodeStored(body)
	})
}

func FuzzWantsPNG(f *testing.F) {
	for _, s := range []string{"image/png", "application/json, image/png;q=0.9", "*/*", "image/*;q=abc", ";;,,"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, accept string) {
		if wantsPNG(accept) && !strings.Contains(accept, "image/") {
			t.Fatalf("%q chose PNG", accept)
		}
	})
}

// referenceAnswer is parseAnswer's specification, with encoding/json only.
func referenceAnswer(b []byte) (id, qrBody string, ok bool) {
	var m map[string]json.RawMessage
	if json.Unmarshal(b, &m) != nil {
		return "", "", false
	}
	_ = json.Unmarshal(m["id"], &id)
	_ = json.Unmarshal(m["qrBody"], &qrBody)
	return id, qrBody, true
}

// The fast path of parseAnswer agrees with encoding/json on every input.
func FuzzParseAnswer(f *testing.F) {
	for _, s := range []string{
		`{"id":"a78e","qrBody":"iVBORw0KGgo="}`, `{"qrBody":"iVBO","id":"x"}`, `{"id":"a","id":"b"}`,
		`{"id":"a","qrBody":"b"} `, `{"id":"a\"b","qrBody":"c"}`, `{"id":"a","qrBody":"b","x":1}`, `{"id":1,"qrBody":"b"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		id, qr, err := parseAnswer(b)
		rid, rqr, ok := referenceAnswer(b)
		if (err == nil) != ok || id != rid || qr != rqr {
			t.Fatalf("%q: got %q %q %v, encoding/json says %q %q %v", b, id, qr, err, rid, rqr, ok)
		}
	})
}

// A stored answer comes back exactly as it went in, whatever bytes its
// values hold; arbitrary stored bytes never panic the decoder.
func FuzzStoredAnswer(f *testing.F) {
	f.Add("a78efd32", "2026-01-15T10:45:00Z", []byte(`{"id":"a78efd32"}`))
	f.Add("a78efd32\nINJECTED", "x\n", []byte("qr2 1 1\n"))
	f.Add("", "", []byte(nil))
	f.Fuzz(func(t *testing.T, id, exp string, doc []byte) {
		got, err := decodeStored(encodeStored(storedAnswer{id: id, expiresAt: exp, doc: doc}))
		if err != nil || got.id != id || got.expiresAt != exp || !bytes.Equal(got.doc, doc) {
			t.Fatalf("%q %q %q: got %+v %v", id, exp, doc, got, err)
		}
		_, _ = decodeStored(doc)
	})
}
