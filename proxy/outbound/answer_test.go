package outbound

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/qrphgate/qrphgate/internal/fakemodulus"
	"github.com/qrphgate/qrphgate/policy"
	"github.com/qrphgate/qrphgate/proxy"
	"github.com/qrphgate/qrphgate/store"
)

// Every field of the provider's answer is checked: an answer the app could
// not use safely (an id that would break a header or a log line, a qrBody
// that is not a PNG) is 502 upstream_bad_response, with no upstream value
// in any header, and is not kept for replay.
func TestUnusableAnswersAreBadResponses(t *testing.T) {
	h := newHarness(t, hopts{noRetries: true})
	png := base64.StdEncoding.EncodeToString(h.fake.PNG())
	answer := func(id, qrBody any) string {
		b, _ := json.Marshal(map[string]any{"id": id, "qrBody": qrBody})
		return string(b)
	}
	for _, tc := range []struct{ name, answer string }{
		{"newline in id", answer("a78efd32\nINJECTED", png)},
		{"CRLF in id", answer("a78efd32\r\nModulus-Expires-At: INJECTED", png)},
		{"NEL in id", answer("a78efd32\u0085INJECTED", png)},
		{"line separator in id", answer("a78efd32\u2028INJECTED", png)},
		{"tab in id", answer("a78efd32\tx", png)},
		{"non-ASCII id", answer("a78efd32-é", png)},
		{"leading space", answer(" a78efd32", png)},
		{"id of 129 bytes", answer(strings.Repeat("a", 129), png)},
		{"empty id", answer("", png)},
		{"numeric id", answer(12345, png)},
		{"no id", `{"qrBody":"` + png + `"}`},
		{"qrBody not base64", answer("a78efd32", "not base64!")},
		{"qrBody base64 of text", answer("a78efd32", base64.StdEncoding.EncodeToString([]byte("hello, this is not a PNG image")))},
		{"qrBody a PNG signature only", answer("a78efd32", base64.StdEncoding.EncodeToString([]byte("\x89PNG\r\n\x1a\n")))},
		{"no qrBody", `{"id":"a78efd32"}`},
		{"qrBody not a string", answer("a78efd32", 1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ref := "BAD-" + strings.ReplaceAll(tc.name, " ", "-")
			if len(ref) > 36 {
				ref = ref[:36]
			}
			before := h.fake.Created()
			h.fake.Fail(fakemodulus.Fault{Answer: tc.answer})
			rec := h.do("POST", "/v1/pay/qr", createBody(ref))
			e := decodeErr(t, rec.Body.Bytes())
			if rec.Code != 502 || e.Error.Code != CodeUpstreamBadResponse {
				t.Fatalf("got %d %s, want 502 upstream_bad_response", rec.Code, rec.Body)
			}
			for _, name := range []string{"Modulus-Transaction-Id", "Modulus-Expires-At", "Idempotent-Replayed"} {
				if v := rec.Header().Get(name); v != "" {
					t.Fatalf("%s: %q on a refused answer", name, v)
				}
			}
			if strings.Contains(rec.Body.String(), "INJECTED") {
				t.Fatalf("the provider's value reached the answer: %s", rec.Body)
			}
			if h.fake.Created() != before+1 {
				t.Fatal("the fault did not reach the provider")
			}
			// Not kept: the store holds nothing for the reference (no
			// answer, no claim), so it is free like after any failed call.
			if c := h.stored(t, ref); c.State != 0 {
				t.Fatalf("the refused answer left state %v in the store: %q", c.State, c.Value)
			}
			rec = h.do("POST", "/v1/pay/qr", createBody(ref))
			if rec.Code != 200 || rec.Header().Get("Idempotent-Replayed") != "" {
				t.Fatalf("retry after a refused answer: %d %s", rec.Code, rec.Body)
			}
			checkStored(t, h, ref, rec)
		})
	}
}

// Values in any form the idempotency store may hold come back as they went
// in, whatever bytes they hold; a value in no known form is an error.
func TestStoredAnswerFormat(t *testing.T) {
	for _, id := range []string{"id-1", "a78efd32\nINJECTED", "qr2 1 2\n", "", strings.Repeat("\n", 5)} {
		v := encodeStored(storedAnswer{id: id, expiresAt: "2026-01-15T10:45:00Z", doc: []byte(`{"id":"id-1"}`)})
		got, err := decodeStored(v)
		if err != nil || got.id != id || got.expiresAt != "2026-01-15T10:45:00Z" || string(got.doc) != `{"id":"id-1"}` {
			t.Fatalf("id %q: %+v %v", id, got, err)
		}
	}
	for _, v := range []string{`{"id":"x"}`, "qr2 ", "qr2 5 5\nabc", "qr2 -1 2\nabc", "qr2 1 99999999999999999999\nx", "qr1\nid-only"} {
		if _, err := decodeStored([]byte(v)); err == nil {
			t.Errorf("decodeStored(%q) accepted an unknown or truncated form", v)
		}
	}
}

// Answers cached by the previous version ("qr1\n<id>\n<expiresAt>\n<json>")
// are still read: the document is the last line, the expiry the one before,
// so an id holding newlines is recovered whole (and then refused, below).
func TestStoredAnswerLegacyForm(t *testing.T) {
	doc := `{"id":"a78efd32\nINJECTED","qrBody":"iVBORw0KGgo="}`
	got, err := decodeStored([]byte("qr1\na78efd32\nINJECTED\n2026-01-15T10:45:00Z\n" + doc))
	if err != nil || got.id != "a78efd32\nINJECTED" || got.expiresAt != "2026-01-15T10:45:00Z" || string(got.doc) != doc {
		t.Fatalf("%+v %v", got, err)
	}
}

// An upgrade keeps the previous version's cached answers working: a good
// one is replayed with its headers and no upstream call; one the previous
// version should have refused (an id with a newline) is 502
// upstream_bad_response on every replay, still with no upstream call, since
// a miss would create a second QR for a reference that already has one.
func TestLegacyCachedAnswers(t *testing.T) {
	h := newHarness(t, hopts{})
	cache := func(ref, id string) {
		exp := h.clock.Now().Add(15 * time.Minute).UTC().Format(time.RFC3339)
		doc := cachedDoc(ref, id, base64.StdEncoding.EncodeToString(h.fake.PNG()), exp)
		h.cacheAnswer(t, ref, []byte("qr1\n"+id+"\n"+exp+"\n"+string(doc)))
	}
	cache("OLD-GOOD", "a78efd32-de3b-4854-b599-000000000042")
	cache("OLD-BROKEN", "a78efd32\nINJECTED")

	rec := h.do("POST", "/v1/pay/qr", createBody("OLD-GOOD"))
	var got CreateQRResponse
	if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &got) != nil || got.ID != "a78efd32-de3b-4854-b599-000000000042" ||
		rec.Header().Get("Modulus-Transaction-Id") != got.ID || rec.Header().Get("Idempotent-Replayed") != "true" {
		t.Fatalf("legacy good answer: %d %v %s", rec.Code, rec.Header(), rec.Body)
	}
	for range 2 {
		rec := h.do("POST", "/v1/pay/qr", createBody("OLD-BROKEN"))
		if e := decodeErr(t, rec.Body.Bytes()); rec.Code != 502 || e.Error.Code != CodeUpstreamBadResponse ||
			rec.Header().Get("Modulus-Transaction-Id") != "" || rec.Header().Get("Modulus-Expires-At") != "" {
			t.Fatalf("legacy broken answer: %d %v %s", rec.Code, rec.Header(), rec.Body)
		}
	}
	if n := len(h.fake.Calls()); n != 0 {
		t.Fatalf("%d upstream calls; a cached answer must never lead to a second QR", n)
	}
	// Both stay in the store as the previous version wrote them: the
	// broken one is neither dropped (a miss would create a second QR) nor
	// rewritten.
	for ref, id := range map[string]string{"OLD-GOOD": "a78efd32-de3b-4854-b599-000000000042", "OLD-BROKEN": "a78efd32\nINJECTED"} {
		c := h.stored(t, ref)
		if c.State != store.Completed || !bytes.HasPrefix(c.Value, []byte("qr1\n"+id+"\n")) {
			t.Fatalf("%s: stored %v %q, want the previous version's answer untouched", ref, c.State, c.Value)
		}
	}
}

// A fresh answer is stored in the length-prefixed form, and what is stored
// is what the app got: the id and expiry of its headers and its JSON body.
// An id that a newline-separated form would have split (the provider's
// value is checked before it is stored, so such an id is refused above) is
// kept whole by the form itself: TestStoredAnswerFormat.
func TestFreshAnswerStored(t *testing.T) {
	h := newHarness(t, hopts{})
	rec := h.do("POST", "/v1/pay/qr", createBody("FRESH-1"))
	if rec.Code != 200 {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	c := h.stored(t, "FRESH-1")
	if c.State != store.Completed || !bytes.HasPrefix(c.Value, []byte(storedPrefix)) {
		t.Fatalf("stored %v %q, want a completed qr2 answer", c.State, c.Value)
	}
	checkStored(t, h, "FRESH-1", rec)
	replay := h.do("POST", "/v1/pay/qr", createBody("FRESH-1"))
	if replay.Code != 200 || replay.Body.String() != rec.Body.String() || replay.Header().Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay: %d %v %s", replay.Code, replay.Header(), replay.Body)
	}
	if after := h.stored(t, "FRESH-1"); !bytes.Equal(after.Value, c.Value) {
		t.Fatalf("a replay rewrote the stored answer: %q, was %q", after.Value, c.Value)
	}
}

// stored reads the idempotency store's entry for createBody(ref).
func (h *harness) stored(t *testing.T, ref string) store.Claim {
	t.Helper()
	key, _ := h.idemKeyOf(ref)
	c, err := h.mem.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// checkStored: the store's answer for ref decodes to what rec gave the app.
func checkStored(t *testing.T, h *harness, ref string, rec *httptest.ResponseRecorder) {
	t.Helper()
	c := h.stored(t, ref)
	got, err := decodeStored(c.Value)
	if err != nil || c.State != store.Completed {
		t.Fatalf("stored %v %q: %v", c.State, c.Value, err)
	}
	if got.id != rec.Header().Get(proxy.HeaderTransactionID) || got.expiresAt != rec.Header().Get(proxy.HeaderExpiresAt) ||
		string(got.doc)+"\n" != rec.Body.String() {
		t.Fatalf("stored %+v, the app got %v %s", got, rec.Header(), rec.Body)
	}
}

// A PNG answer is refused before any header is set: the error carries
// none of a success's headers (the provider's id, the expiry, the replay
// mark), whatever the cached qrBody holds.
func TestPNGAnswerRefusedWithoutSuccessHeaders(t *testing.T) {
	h := newHarness(t, hopts{})
	exp := h.clock.Now().Add(15 * time.Minute).UTC().Format(time.RFC3339)
	for ref, qrBody := range map[string]string{
		"PNG-NOT-BASE64": "not base64!",
		"PNG-NOT-A-PNG":  base64.StdEncoding.EncodeToString([]byte("hello, this is not a PNG image")),
		"PNG-EMPTY":      "",
	} {
		t.Run(ref, func(t *testing.T) {
			const id = "a78efd32-de3b-4854-b599-000000000043"
			h.cacheAnswer(t, ref, encodeStored(storedAnswer{id: id, expiresAt: exp, doc: cachedDoc(ref, id, qrBody, exp)}))
			rec := h.do("POST", "/v1/pay/qr", createBody(ref), "Accept: image/png")
			if e := decodeErr(t, rec.Body.Bytes()); rec.Code != 502 || e.Error.Code != CodeUpstreamBadResponse {
				t.Fatalf("got %d %s, want 502 upstream_bad_response", rec.Code, rec.Body)
			}
			for _, name := range []string{proxy.HeaderTransactionID, proxy.HeaderExpiresAt, proxy.HeaderIdempotentReplayed} {
				if v := rec.Header().Get(name); v != "" {
					t.Fatalf("%s: %q on an error answer", name, v)
				}
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Fatalf("Content-Type %q on an error answer", ct)
			}
			// The JSON answer of the same cached entry is still served.
			if rec := h.do("POST", "/v1/pay/qr", createBody(ref)); rec.Code != 200 || rec.Header().Get(proxy.HeaderTransactionID) != id {
				t.Fatalf("JSON replay: %d %v %s", rec.Code, rec.Header(), rec.Body)
			}
		})
	}
	if n := len(h.fake.Calls()); n != 0 {
		t.Fatalf("%d upstream calls", n)
	}
}

// cachedDoc is the JSON answer the gateway keeps for ref.
func cachedDoc(ref, id, qrBody, exp string) []byte {
	doc, _ := json.Marshal(CreateQRResponse{ID: id, QRBody: qrBody, MerchantReferenceNumber: ref, Amount: "500.00", Currency: "PHP", ExpiresAt: exp})
	return doc
}

// idemKeyOf is the idempotency key of createBody(ref).
func (h *harness) idemKeyOf(ref string) (key, fingerprint string) {
	key, fingerprint, _ = h.out.idemKey(policy.CreateQR{ActivationCode: testActivationCode, Currency: "PHP", Amount: "500.00", MerchantReferenceNumber: ref})
	return key, fingerprint
}

// cacheAnswer stores value as the completed answer of createBody(ref), as
// an earlier call (or version) would have.
func (h *harness) cacheAnswer(t *testing.T, ref string, value []byte) {
	t.Helper()
	ctx := context.Background()
	key, fp := h.idemKeyOf(ref)
	if _, err := h.mem.Begin(ctx, key, fp, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := h.mem.Complete(ctx, key, fp, value, 15*time.Minute); err != nil {
		t.Fatal(err)
	}
}

// The canonical request is written as encoding/json writes it, whatever
// its values hold.
func TestMarshalCreateQRMatchesJSON(t *testing.T) {
	for _, c := range []policy.CreateQR{
		{Currency: "PHP", Amount: "500.00", MerchantReferenceNumber: "ORDER-1"},
		{ActivationCode: "A9X4-B7P2-Q6Z8-M3L5", Currency: "PHP", Amount: "1.00", MerchantReferenceNumber: "R"},
		{ActivationCode: `quote"and<tag>&`, Currency: "PHP", Amount: "1.00", MerchantReferenceNumber: "é"},
		{},
	} {
		want, _ := json.Marshal(c)
		if got := marshalCreateQR(c); string(got) != string(want) {
			t.Errorf("%+v: %s, want %s", c, got, want)
		}
	}
}
