package sandbox

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

func TestCreateQRRoundTrip(t *testing.T) {
	h := newHarness(t, nil)
	ans, png := h.createQR("500.00", "ORDER-12345")
	if !uuidPattern.MatchString(ans.ID) {
		t.Fatalf("id %q is not a UUID", ans.ID)
	}
	text := decodeQRPNG(t, png)
	p, err := ParsePayload(text)
	if err != nil {
		t.Fatalf("QR text %q: %v", text, err)
	}
	for path, want := range map[string]string{"54": "500.00", "53": "608", "62/05": "ORDER-12345", "28/00": "ph.ppmi.p2m", "28/03": ans.ID[:25], "01": "12"} {
		if got, _ := p.Get(strings.Split(path, "/")...); got != want {
			t.Errorf("tag %s = %q, want %q", path, got, want)
		}
	}

	// The page lists it, with the same image.
	st := h.sim.State()
	if len(st.QRs) != 1 || st.QRs[0].ID != ans.ID || st.QRs[0].Status != StatusPending || st.QRs[0].Amount != "500.00" ||
		st.QRs[0].Reference != "ORDER-12345" || st.QRs[0].Payload != text {
		t.Fatalf("state %+v", st.QRs)
	}
	resp, img := h.request(http.MethodGet, st.QRs[0].Image, "", "", false)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "image/png" || !bytes.Equal(img, png) {
		t.Fatalf("image endpoint: %d %q, same bytes %v", resp.StatusCode, resp.Header.Get("Content-Type"), bytes.Equal(img, png))
	}
	if resp, _ := h.request(http.MethodGet, "/sandbox/qr/nope.png", "", "", false); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown image: %d", resp.StatusCode)
	}

	// Two creates with the same reference are two QRs (the provider does
	// not document duplicate rejection; the gateway handles idempotency).
	again, _ := h.createQR("500.00", "ORDER-12345")
	if again.ID == ans.ID {
		t.Fatal("second create returned the same id")
	}
}

func TestCreateQRErrors(t *testing.T) {
	h := newHarness(t, nil)
	valid := `{"activationCode":"TEST-0000-0000-0001","currency":"PHP","amount":"500.00","merchantReferenceNumber":"ORDER-1"}`
	other, _ := newKeyForTest("TEST-ONLY-other-key-do-not-use-3")
	wrongKeyTok, _ := other.Encrypt([]byte(valid))
	wrongKeyBody, _ := json.Marshal(map[string]string{"Token": wrongKeyTok})
	withPT := func(pt string) string { return h.seal(pt) }

	type req struct {
		name, method, ctype, body string
		auth                      func(*http.Request)
		status                    int
		code, msg                 string
	}
	basic := func(user, pass string) func(*http.Request) {
		return func(r *http.Request) { r.SetBasicAuth(user, pass) }
	}
	ok := basic(testSecret, "")
	for _, tc := range []req{
		{name: "no credentials", body: h.seal(valid), status: 401, code: CodeInvalidAPIKey, msg: MessageInvalidAPIKey},
		{name: "wrong secret key", body: h.seal(valid), auth: basic("sk_test_FAKE-wrong-key", ""), status: 401, code: CodeInvalidAPIKey},
		{name: "password not empty", body: h.seal(valid), auth: basic(testSecret, "x"), status: 401, code: CodeInvalidAPIKey},
		{name: "bearer scheme", body: h.seal(valid), auth: func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+testSecret) }, status: 401, code: CodeInvalidAPIKey},
		{name: "GET", method: http.MethodGet, auth: ok, status: 405, code: CodeMethodNotAllowed},
		{name: "not JSON content type", ctype: "text/plain", body: h.seal(valid), auth: ok, status: 400, code: CodeBadRequestBody, msg: "Content-Type"},
		{name: "body not JSON", body: "Token=abc", auth: ok, status: 400, code: CodeBadRequestBody, msg: `{"Token"`},
		{name: "token lowercase", body: strings.Replace(h.seal(valid), "Token", "token", 1), auth: ok, status: 400, code: CodeBadRequestBody},
		{name: "extra member", body: strings.Replace(h.seal(valid), "{", `{"x":1,`, 1), auth: ok, status: 400, code: CodeBadRequestBody},
		{name: "token not a string", body: `{"Token":5}`, auth: ok, status: 400, code: CodeBadRequestBody},
		{name: "plain JSON instead of a token", body: valid, auth: ok, status: 400, code: CodeBadRequestBody},
		{name: "token garbage", body: `{"Token":"abc.def"}`, auth: ok, status: 400, code: CodeTokenUndecryptable, msg: "not a compact JWE"},
		{name: "token empty", body: `{"Token":""}`, auth: ok, status: 400, code: CodeTokenUndecryptable, msg: "empty"},
		{name: "token sealed with another key", body: string(wrongKeyBody), auth: ok, status: 400, code: CodeTokenUndecryptable, msg: "wrong key"},
		{name: "amount as a number", body: withPT(strings.Replace(valid, `"500.00"`, `500`, 1)), auth: ok, status: 400, code: CodeValidation, msg: "[invalid_amount]"},
		{name: "amount without decimals", body: withPT(strings.Replace(valid, `"500.00"`, `"500"`, 1)), auth: ok, status: 400, code: CodeValidation, msg: "[invalid_amount]"},
		{name: "amount too small", body: withPT(strings.Replace(valid, `"500.00"`, `"0.99"`, 1)), auth: ok, status: 400, code: CodeValidation, msg: "[amount_out_of_range]"},
		{name: "amount too large", body: withPT(strings.Replace(valid, `"500.00"`, `"100000.00"`, 1)), auth: ok, status: 400, code: CodeValidation, msg: "[amount_out_of_range]"},
		{name: "currency lowercase", body: withPT(strings.Replace(valid, `"PHP"`, `"php"`, 1)), auth: ok, status: 400, code: CodeValidation, msg: "[invalid_currency]"},
		{name: "currency not allowed", body: withPT(strings.Replace(valid, `"PHP"`, `"USD"`, 1)), auth: ok, status: 400, code: CodeValidation, msg: "[unsupported_currency]"},
		{name: "reference with underscore", body: withPT(strings.Replace(valid, `"ORDER-1"`, `"ORDER_1"`, 1)), auth: ok, status: 400, code: CodeValidation, msg: "[invalid_reference]"},
		{name: "reference too long", body: withPT(strings.Replace(valid, `"ORDER-1"`, `"`+strings.Repeat("A", 37)+`"`, 1)), auth: ok, status: 400, code: CodeValidation, msg: "[invalid_reference]"},
		{name: "activation code missing", body: withPT(`{"currency":"PHP","amount":"500.00","merchantReferenceNumber":"ORDER-1"}`), auth: ok, status: 400, code: CodeValidation, msg: "activationCode: is required"},
		{name: "activation code malformed", body: withPT(strings.Replace(valid, "TEST-0000-0000-0001", "MERCHANT_ABC_123", 1)), auth: ok, status: 400, code: CodeValidation, msg: "[invalid_activation_code]"},
		{name: "activation code of another merchant", body: withPT(strings.Replace(valid, "TEST-0000-0000-0001", "TEST-0000-0000-0002", 1)), auth: ok, status: 400, code: CodeUnknownMerchant},
		{name: "unknown field", body: withPT(strings.Replace(valid, "{", `{"tip":"1.00",`, 1)), auth: ok, status: 400, code: CodeValidation, msg: "[unknown_field]"},
		{name: "missing amount", body: withPT(`{"activationCode":"TEST-0000-0000-0001","currency":"PHP","merchantReferenceNumber":"ORDER-1"}`), auth: ok, status: 400, code: CodeValidation, msg: "[missing_field]"},
		{name: "plaintext not JSON", body: withPT(`not json`), auth: ok, status: 400, code: CodeValidation, msg: "[invalid_json]"},
		{name: "body too large", body: `{"Token":"` + strings.Repeat("a", maxCreateBody) + `"}`, auth: ok, status: 413, code: CodeBadRequestBody},
	} {
		t.Run(tc.name, func(t *testing.T) {
			method, ctype := tc.method, tc.ctype
			if method == "" {
				method = http.MethodPost
			}
			if ctype == "" {
				ctype = "application/json"
			}
			r, _ := http.NewRequest(method, h.srv.URL+"/v1/pay/qr", strings.NewReader(tc.body))
			r.Header.Set("Content-Type", ctype)
			if tc.auth != nil {
				tc.auth(r)
			}
			resp, body := h.send(r)
			pe := providerError(t, resp, body, tc.status, tc.code)
			if tc.msg != "" && !strings.Contains(pe.Error, tc.msg) {
				t.Fatalf("message %q lacks %q", pe.Error, tc.msg)
			}
		})
	}
	if n := len(h.sim.State().QRs); n != 0 {
		t.Fatalf("%d QRs created by refused requests", n)
	}
}

// TestCreateQRAcceptsAnyMerchantWhenNoneConfigured: without
// activation_codes, any well-formed code is a merchant.
func TestCreateQRAcceptsAnyMerchantWhenNoneConfigured(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.ActivationCodes = nil })
	pt := `{"activationCode":"ZZZZ-9999-ZZZZ-9999","currency":"PHP","amount":"1.00","merchantReferenceNumber":"R"}`
	resp, body := h.request(http.MethodPost, "/v1/pay/qr", "application/json", h.seal(pt), true)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	ans := h.openAnswer(body)
	png, _ := base64.StdEncoding.DecodeString(ans.QRBody)
	if p, err := ParsePayload(decodeQRPNG(t, png)); err != nil {
		t.Fatal(err)
	} else if amt, _ := p.Get("54"); amt != "1.00" {
		t.Fatalf("amount %q", amt)
	}
}

func TestPing(t *testing.T) {
	h := newHarness(t, nil)
	resp, body := h.request(http.MethodGet, "/ping", "", "", false)
	if resp.StatusCode != http.StatusOK || string(body) != "Pong!" || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("ping: %d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	resp, body = h.request(http.MethodPost, "/ping", "", "", false)
	providerError(t, resp, body, http.StatusMethodNotAllowed, CodeMethodNotAllowed)
	resp, body = h.request(http.MethodGet, "/v2/unknown", "", "", true)
	providerError(t, resp, body, http.StatusNotFound, CodeRouteNotFound)
}
