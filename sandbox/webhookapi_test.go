package sandbox

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/qrphgate/qrphgate/policy"
)

func decodeInto[T any](t testing.TB, body []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	return v
}

func TestWebhookManagementAPI(t *testing.T) {
	h := newHarness(t, nil)
	create := func(body any, activationCode string) (*http.Response, []byte) {
		b, _ := json.Marshal(body)
		r, _ := http.NewRequest(http.MethodPost, h.srv.URL+"/v1/webhooks", strings.NewReader(string(b)))
		r.Header.Set("Content-Type", "application/json")
		r.SetBasicAuth(testSecret, "")
		if activationCode != "" {
			r.Header.Set("activation-code", activationCode)
		}
		return h.send(r)
	}

	resp, body := create(map[string]string{"webhookAction": "QRPH_SUCCESS", "callbackUrl": "https://api.example.com/webhooks/success"}, "MERCHANT_ABC_123")
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	created := decodeInto[map[string]any](t, body)
	if len(created) != 4 || !uuidPattern.MatchString(created["id"].(string)) || created["webhookAction"] != "QRPH_SUCCESS" ||
		created["webhookStatus"] != "ENABLED" || created["callbackUrl"] != "https://api.example.com/webhooks/success" {
		t.Fatalf("create answer %s", body)
	}
	id := created["id"].(string)

	// The same URL for the other action is allowed (the docs advise
	// subscribing to both); the same URL and action again is a conflict.
	resp, body = create(map[string]string{"webhookAction": "QRPH_DECLINED", "callbackUrl": "https://api.example.com/webhooks/success", "webhookStatus": "DISABLED"}, "MERCHANT_ABC_123")
	if resp.StatusCode != http.StatusCreated || !strings.Contains(string(body), `"webhookStatus":"DISABLED"`) {
		t.Fatalf("create for the other action, disabled: %d %s", resp.StatusCode, body)
	}
	declinedID := decodeInto[WebhookView](t, body).ID
	resp, body = create(map[string]string{"webhookAction": "QRPH_SUCCESS", "callbackUrl": "https://api.example.com/webhooks/success"}, "MERCHANT_ABC_123")
	providerError(t, resp, body, http.StatusConflict, CodeWebhookConflict)

	for _, tc := range []struct {
		name string
		body any
		msg  string
	}{
		{"missing callbackUrl", map[string]string{"webhookAction": "QRPH_SUCCESS"}, "callbackUrl is required"},
		{"missing action", map[string]string{"callbackUrl": "https://x.example"}, "webhookAction is required"},
		{"unknown action", map[string]string{"webhookAction": "QRPH_REFUND", "callbackUrl": "https://x.example"}, "webhookAction must be one of"},
		{"unknown status", map[string]string{"webhookAction": "QRPH_SUCCESS", "callbackUrl": "https://x.example", "webhookStatus": "PAUSED"}, "webhookStatus must be one of"},
		{"relative URL", map[string]string{"webhookAction": "QRPH_SUCCESS", "callbackUrl": "/hooks"}, "absolute URL"},
		{"ftp URL", map[string]string{"webhookAction": "QRPH_SUCCESS", "callbackUrl": "ftp://x.example/h"}, "must use https"},
		{"URL with credentials", map[string]string{"webhookAction": "QRPH_SUCCESS", "callbackUrl": "https://u:p@x.example/h"}, "credentials"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := create(tc.body, "")
			if pe := providerError(t, resp, body, http.StatusBadRequest, CodeWebhookInvalid); !strings.Contains(pe.Error, tc.msg) {
				t.Fatalf("message %q lacks %q", pe.Error, tc.msg)
			}
		})
	}
	resp, body = create(map[string]any{"webhookAction": "QRPH_SUCCESS", "callbackUrl": "https://x.example", "actions": []string{"QRPH_SUCCESS"}}, "")
	providerError(t, resp, body, http.StatusBadRequest, CodeBadRequestBody)
	resp, body = create(map[string]any{"webhookAction": 1, "callbackUrl": "https://x.example"}, "")
	providerError(t, resp, body, http.StatusBadRequest, CodeBadRequestBody)
	resp, body = create(map[string]string{"webhookAction": "QRPH_SUCCESS", "callbackUrl": "https://x.example"}, "bad code\twith tab")
	providerError(t, resp, body, http.StatusBadRequest, CodeWebhookInvalid)

	// Some versions of the docs send the body as {"Token": JWE}: accepted.
	pt, _ := json.Marshal(map[string]string{"webhookAction": "QRPH_SUCCESS", "callbackUrl": "https://sealed.example/h"})
	resp, body = h.request(http.MethodPost, "/v1/webhooks", "application/json", h.seal(string(pt)), true)
	if resp.StatusCode != http.StatusCreated || !strings.Contains(string(body), "https://sealed.example/h") {
		t.Fatalf("sealed create: %d %s", resp.StatusCode, body)
	}
	resp, body = h.request(http.MethodPost, "/v1/webhooks", "application/json", `{"Token":"a.b.c.d.e"}`, true)
	providerError(t, resp, body, http.StatusBadRequest, CodeTokenUndecryptable)

	// List: the union of the two documented shapes.
	resp, body = h.api(http.MethodGet, "/v1/webhooks", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("list: %d %s", resp.StatusCode, body)
	}
	list := decodeInto[map[string][]map[string]any](t, body)["webhooks"]
	if len(list) != 3 {
		t.Fatalf("list has %d webhooks: %s", len(list), body)
	}
	first := list[0]
	for k, want := range map[string]any{
		"id": id, "webhookAction": "QRPH_SUCCESS", "webhookStatus": "ENABLED", "callbackUrl": "https://api.example.com/webhooks/success",
		"webhookUrl": "https://api.example.com/webhooks/success", "status": "ENABLED", "activationCode": "MERCHANT_ABC_123",
		"createdAt": "2026-01-15T10:30:00Z", "updatedAt": "2026-01-15T10:30:00Z",
	} {
		if first[k] != want {
			t.Errorf("list[0].%s = %v, want %v", k, first[k], want)
		}
	}
	if acts, _ := first["actions"].([]any); len(acts) != 1 || acts[0] != "QRPH_SUCCESS" {
		t.Errorf("list[0].actions = %v", first["actions"])
	}

	// Update: partial.
	h.clk.Advance(60e9)
	resp, body = h.api(http.MethodPut, "/v1/webhooks/"+id, map[string]string{"webhookStatus": "DISABLED"})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("update: %d %s", resp.StatusCode, body)
	}
	if u := decodeInto[WebhookView](t, body); u.WebhookStatus != "DISABLED" || u.CallbackURL != "https://api.example.com/webhooks/success" || u.WebhookAction != "QRPH_SUCCESS" {
		t.Fatalf("update answer %+v", u)
	}
	if got := h.store.webhookList()[0]; got.UpdatedAt.Equal(got.CreatedAt) {
		t.Fatal("updatedAt did not move")
	}
	resp, body = h.api(http.MethodPut, "/v1/webhooks/"+id, map[string]string{"webhookAction": "NOPE"})
	providerError(t, resp, body, http.StatusBadRequest, CodeWebhookInvalid)
	// Turning the declined webhook into a duplicate of the success one conflicts.
	resp, body = h.api(http.MethodPut, "/v1/webhooks/"+declinedID, map[string]string{"webhookAction": "QRPH_SUCCESS"})
	providerError(t, resp, body, http.StatusConflict, CodeWebhookConflict)
	resp, body = h.api(http.MethodPut, "/v1/webhooks/00000000-0000-4000-8000-000000000000", map[string]string{"webhookStatus": "ENABLED"})
	if pe := providerError(t, resp, body, http.StatusNotFound, CodeWebhookNotFound); pe.Error != MessageWebhookNotFound {
		t.Fatalf("message %q", pe.Error)
	}

	// Delete: 204 and empty, then 404.
	resp, body = h.api(http.MethodDelete, "/v1/webhooks/"+id, nil)
	if resp.StatusCode != http.StatusNoContent || len(body) != 0 {
		t.Fatalf("delete: %d %q", resp.StatusCode, body)
	}
	resp, body = h.api(http.MethodDelete, "/v1/webhooks/"+id, nil)
	providerError(t, resp, body, http.StatusNotFound, CodeWebhookNotFound)
	if n := len(h.store.webhookList()); n != 2 {
		t.Fatalf("%d webhooks left", n)
	}

	// No single-webhook GET is documented.
	resp, body = h.api(http.MethodGet, "/v1/webhooks/"+declinedID, nil)
	providerError(t, resp, body, http.StatusMethodNotAllowed, CodeMethodNotAllowed)
}

func TestWebhookAPIAuth(t *testing.T) {
	h := newHarness(t, nil)
	for _, tc := range []struct{ method, path, body string }{
		{http.MethodGet, "/v1/webhooks", ""},
		{http.MethodPost, "/v1/webhooks", `{"webhookAction":"QRPH_SUCCESS","callbackUrl":"https://x.example"}`},
		{http.MethodPut, "/v1/webhooks/x", `{}`},
		{http.MethodDelete, "/v1/webhooks/x", ""},
		{http.MethodPost, "/v1/webhooks/qrph/simulate", `{"qrBody":"x","useCase":"SUCCESS"}`},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			resp, body := h.request(tc.method, tc.path, "application/json", tc.body, false)
			if pe := providerError(t, resp, body, http.StatusUnauthorized, CodeWebhookAuth); pe.Error != MessageWebhookAuth {
				t.Fatalf("message %q", pe.Error)
			}
			r, _ := http.NewRequest(tc.method, h.srv.URL+tc.path, strings.NewReader(tc.body))
			r.Header.Set("Content-Type", "application/json")
			r.SetBasicAuth("sk_test_FAKE-not-this-account", "")
			resp, body = h.send(r)
			providerError(t, resp, body, http.StatusUnauthorized, CodeWebhookAuth)
		})
	}
	if len(h.store.webhookList()) != 0 {
		t.Fatal("an unauthenticated create registered a webhook")
	}
}

func TestWebhookRegistryIsBounded(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.RateLimit = policy.RateLimit{Requests: 1000, Period: time.Minute} })
	for i := range maxWebhooks {
		h.register("QRPH_SUCCESS", fmt.Sprintf("https://example.com/hook/%d", i), "")
	}
	resp, body := h.api(http.MethodPost, "/v1/webhooks", map[string]string{"webhookAction": "QRPH_SUCCESS", "callbackUrl": "https://example.com/one-more"})
	providerError(t, resp, body, http.StatusBadRequest, CodeTooManyWebhooks)
	if n := len(h.store.webhookList()); n != maxWebhooks {
		t.Fatalf("%d webhooks registered", n)
	}
}

// TestCallbacksPreRegistered: configured callbacks are registered for both
// actions at start, once, even when a second simulator (a reload) shares
// the account, and they deliver like API-registered ones.
func TestCallbacksPreRegistered(t *testing.T) {
	cb := newCallback(t)
	h := newHarness(t, func(c *Config) { c.Callbacks = []string{cb.srv.URL + "/webhooks/modulus"} })
	if _, err := New(Config{SecretKey: testSecret, EncryptionKey: h.key, Callbacks: []string{cb.srv.URL + "/webhooks/modulus"}}, h.store); err != nil {
		t.Fatal(err)
	}
	list := h.store.webhookList()
	if len(list) != 2 || list[0].WebhookAction != "QRPH_SUCCESS" || list[1].WebhookAction != "QRPH_DECLINED" ||
		list[0].CallbackURL != cb.srv.URL+"/webhooks/modulus" || list[0].Status != "ENABLED" {
		t.Fatalf("registry %+v", list)
	}
	ans, _ := h.createQR("500.00", "ORDER-1")
	h.simulate(ans.ID, "DECLINED")
	waitFor(t, "the delivery", func() bool { return cb.count() == 1 })
	if p := h.openWebhook(cb.request(0)); p.Action != "QRPH_DECLINED" {
		t.Fatalf("payload %+v", p)
	}
	if _, err := New(Config{SecretKey: testSecret, EncryptionKey: h.key, Callbacks: []string{"/relative"}}, h.store); err == nil || !strings.Contains(err.Error(), "callbacks[0]") {
		t.Fatalf("relative callback: %v", err)
	}
}
