package sandbox

import (
	"net/http"
	"strings"
	"testing"
)

func TestPageAndAssets(t *testing.T) {
	h := newHarness(t, nil)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, p := range []string{"/", "/sandbox"} {
		resp, err := client.Get(h.srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/sandbox/" {
			t.Fatalf("GET %s: %d to %q", p, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	resp, body := h.request(http.MethodGet, "/sandbox/", "", "", false)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
		!strings.Contains(string(body), `<script src="/sandbox/assets/app.js"`) {
		t.Fatalf("page: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "default-src 'none'") {
		t.Fatalf("CSP %q", csp)
	}
	// Nothing is loaded from elsewhere.
	for _, asset := range []string{"/sandbox/", "/sandbox/assets/app.js", "/sandbox/assets/style.css"} {
		resp, body := h.request(http.MethodGet, asset, "", "", false)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d", asset, resp.StatusCode)
		}
		if s := string(body); strings.Contains(s, "http://") || strings.Contains(s, "https://") || strings.Contains(s, "//cdn") {
			t.Fatalf("%s refers to another site", asset)
		}
		if strings.HasSuffix(asset, ".js") && !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/javascript") {
			t.Fatalf("app.js served as %q", resp.Header.Get("Content-Type"))
		}
	}
	for _, p := range []string{"/sandbox/assets/index.html", "/sandbox/assets/nope.js", "/sandbox/nope"} {
		if resp, _ := h.request(http.MethodGet, p, "", "", false); resp.StatusCode != http.StatusNotFound {
			t.Fatalf("%s: %d", p, resp.StatusCode)
		}
	}
}

func TestPageButtonsAndForm(t *testing.T) {
	h := newHarness(t, nil)
	cb := newCallback(t)
	h.register("QRPH_SUCCESS", cb.srv.URL, "")

	// The form creates a QR without credentials, validated as the API is.
	resp, body := h.request(http.MethodPost, "/sandbox/qr", "application/json", `{"amount":"12.34","currency":"PHP","merchantReferenceNumber":"FORM-1"}`, false)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("form: %d %s", resp.StatusCode, body)
	}
	id := decodeInto[map[string]string](t, body)["id"]
	resp, body = h.request(http.MethodPost, "/sandbox/qr", "application/json", `{"amount":"12.3","currency":"PHP","merchantReferenceNumber":"FORM-2"}`, false)
	providerError(t, resp, body, http.StatusBadRequest, CodeValidation)

	// A button pressed on another site's page is refused.
	r, _ := http.NewRequest(http.MethodPost, h.srv.URL+"/sandbox/qr/"+id+"/pay", nil)
	r.Header.Set("Origin", "https://evil.example")
	resp, body = h.send(r)
	providerError(t, resp, body, http.StatusForbidden, CodeBadRequestBody)
	r, _ = http.NewRequest(http.MethodPost, h.srv.URL+"/sandbox/qr/"+id+"/pay", nil)
	r.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, body = h.send(r)
	providerError(t, resp, body, http.StatusForbidden, CodeBadRequestBody)

	// Pay, from the page itself (same origin).
	r, _ = http.NewRequest(http.MethodPost, h.srv.URL+"/sandbox/qr/"+id+"/pay", nil)
	r.Header.Set("Origin", h.srv.URL)
	resp, body = h.send(r)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("pay: %d %s", resp.StatusCode, body)
	}
	if ans := decodeInto[simulateAnswer](t, body); ans.ID != id || ans.Status != StatusPaid || ans.Deliveries != 1 {
		t.Fatalf("pay answer %+v", ans)
	}
	waitFor(t, "the webhook", func() bool { return cb.count() == 1 })
	if p := h.openWebhook(cb.request(0)); p.ReferenceNumber != "FORM-1" || p.Amount != 1234 {
		t.Fatalf("payload %+v", p)
	}
	resp, body = h.request(http.MethodPost, "/sandbox/qr/"+id+"/decline", "", "", false)
	providerError(t, resp, body, http.StatusConflict, CodeQRSettled)
	resp, body = h.request(http.MethodPost, "/sandbox/qr/nope/pay", "", "", false)
	providerError(t, resp, body, http.StatusNotFound, CodeQRNotFound)

	resp, body = h.request(http.MethodGet, "/sandbox/api/state", "", "", false)
	st := decodeInto[State](t, body)
	if resp.StatusCode != 200 || len(st.QRs) != 1 || st.QRs[0].Status != StatusPaid || len(st.Webhooks) != 1 ||
		st.Settings.RateLimit != "100/1m" || len(st.Settings.RetryIntervals) != 3 || st.Settings.QRValidity != "15m" || st.Settings.RetryIntervals[0] != "15m" || st.Settings.Latency != "0s" {
		t.Fatalf("state %d %s", resp.StatusCode, body)
	}
}
