package caddymodule

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/qrphgate/qrphgate/crypto"
	"github.com/qrphgate/qrphgate/internal/clock"
	"github.com/qrphgate/qrphgate/internal/e2e"
	"github.com/qrphgate/qrphgate/proxy/inbound"
	"github.com/qrphgate/qrphgate/store"
)

const (
	testWebhookKey    = "TEST-ONLY-fake-key-do-not-use-32"
	testWebhookKeyEnv = "QRPHGATE_TEST_WEBHOOK_KEY"
	testSignSecret    = "TEST-ONLY-fake-signing-secret-not-real-000"
	testSignEnv       = "QRPHGATE_TEST_SIGN_SECRET"
)

// testApp is the app behind the gateway; it counts deliveries by id.
type testApp struct {
	srv    *httptest.Server
	mu     sync.Mutex
	status int
	got    []http.Header
	bodies []string
}

func newTestApp(t *testing.T) *testApp {
	a := &testApp{status: http.StatusOK}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		a.mu.Lock()
		a.got = append(a.got, r.Header.Clone())
		a.bodies = append(a.bodies, string(body))
		status := a.status
		a.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *testApp) setStatus(s int) {
	a.mu.Lock()
	a.status = s
	a.mu.Unlock()
}

func (a *testApp) deliveries() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.got)
}

func newCaddyContext(t *testing.T) caddy.Context {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	return ctx
}

func testWebhook(t *testing.T, forwardTo string) *Webhook {
	t.Helper()
	t.Setenv(testWebhookKeyEnv, testWebhookKey)
	t.Setenv(testSignEnv, testSignSecret)
	return &Webhook{
		DecryptionKeys: []string{"{env." + testWebhookKeyEnv + "}"},
		AllowIPs:       []string{"203.0.113.0/24"},
		ForwardTo:      forwardTo,
		SignSecret:     "{env." + testSignEnv + "}",
		Spool:          filepath.Join(t.TempDir(), "webhooks.spool"),
	}
}

func provision(t *testing.T, h *Webhook, ctx caddy.Context) {
	t.Helper()
	if err := h.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Cleanup() })
}

func sealWebhook(t *testing.T, plaintext string) string {
	t.Helper()
	k, _ := crypto.NewKey("k", testWebhookKey, crypto.EncodingUTF8)
	e, _ := crypto.NewEncrypter(k)
	tok, err := e.Encrypt([]byte(plaintext))
	if err != nil {
		t.Fatal(err)
	}
	return `{"data":"` + tok + `"}`
}

// caddyRequest is a request as Caddy hands it to a handler: with the
// server's resolved client IP among the request vars.
func caddyRequest(body, clientIP string, trusted bool, srv *caddyhttp.Server) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/webhooks/modulus", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	ctx := context.WithValue(r.Context(), caddyhttp.VarsCtxKey, map[string]any{
		caddyhttp.ClientIPVarKey: clientIP, caddyhttp.TrustedProxyVarKey: trusted,
	})
	if srv != nil {
		ctx = context.WithValue(ctx, caddyhttp.ServerCtxKey, srv)
	}
	return r.WithContext(ctx)
}

func serve(t *testing.T, h *Webhook, r *http.Request) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	if err := h.ServeHTTP(rec, r, nil); err != nil {
		t.Fatal(err)
	}
	return rec
}

func TestWebhookProvisionErrors(t *testing.T) {
	t.Setenv("QRPHGATE_TEST_SHORT_KEY", "TEST-ONLY-too-short")
	t.Setenv("QRPHGATE_TEST_BAD_CODE", "TEST-0000 BAD-CODE")
	t.Setenv("QRPHGATE_TEST_BLANK", "   ")
	t.Setenv("QRPHGATE_TEST_BAD_IPS", "203.0.113.0/24 10.0.0.1/8")
	t.Setenv("QRPHGATE_TEST_FTP_URL", "ftp://app/x")
	t.Setenv("QRPHGATE_TEST_SIGN_AGAIN", testSignSecret)
	for _, tc := range []struct {
		name   string
		mutate func(h *Webhook)
		want   string
	}{
		{"no key", func(h *Webhook) { h.DecryptionKeys = nil }, "decryption_key is required"},
		{"inline key", func(h *Webhook) { h.DecryptionKeys = []string{testWebhookKey} }, "decryption_key[1] must be a {env.NAME} or {file.PATH} placeholder"},
		{"unset key", func(h *Webhook) { h.DecryptionKeys = append(h.DecryptionKeys, "{env.QRPHGATE_TEST_UNSET}") }, "decryption_key[2]: {env.QRPHGATE_TEST_UNSET} is empty or unset"},
		{"short key", func(h *Webhook) { h.DecryptionKeys = []string{"{env.QRPHGATE_TEST_SHORT_KEY}"} }, "decryption_key[1]: key must decode to exactly 32 bytes: utf8 key decodes to 19 bytes"},
		{"bad encoding", func(h *Webhook) { h.KeyEncoding = "rot13" }, "key_encoding: unknown key encoding"},
		{"key not base64", func(h *Webhook) { h.KeyEncoding = "hex" }, "decryption_key[1]: key is not valid hex"},
		{"no allow_ips", func(h *Webhook) { h.AllowIPs = nil }, "allow_ips needs at least one CIDR, or the word any"},
		{"bad allow_ips", func(h *Webhook) { h.AllowIPs = []string{"203.0.113.0/33"} }, "is not an IP address or CIDR"},
		{"any with addresses", func(h *Webhook) { h.AllowIPs = []string{"any", "10.0.0.0/8"} }, "any cannot be combined"},
		{"bad activation code", func(h *Webhook) { h.ActivationCodes = []string{"MERCHANT_1", "has space"} }, "activation_codes[2]: each code must be 1 to 128 visible ASCII characters"},
		{"unset activation code", func(h *Webhook) { h.ActivationCodes = []string{"{env.QRPHGATE_TEST_UNSET}"} }, "activation_codes[1]: {env.QRPHGATE_TEST_UNSET} is empty, unset or not known at start-up"},
		{"bad activation code from env", func(h *Webhook) { h.ActivationCodes = []string{"{env.QRPHGATE_TEST_BAD_CODE}"} }, "activation_codes[1]: each code must be"},
		{"request placeholder in activation code", func(h *Webhook) { h.ActivationCodes = []string{"{http.request.header.X}"} }, "activation_codes[1]: {http.request.header.X} is empty, unset or not known at start-up"},
		{"unset allow_ips", func(h *Webhook) { h.AllowIPs = []string{"{env.QRPHGATE_TEST_UNSET}"} }, "allow_ips: {env.QRPHGATE_TEST_UNSET} is empty, unset or not known at start-up"},
		{"blank allow_ips", func(h *Webhook) { h.AllowIPs = []string{"{env.QRPHGATE_TEST_BLANK}"} }, "allow_ips: {env.QRPHGATE_TEST_BLANK} resolves to no address"},
		{"bad allow_ips from env", func(h *Webhook) { h.AllowIPs = []string{"{env.QRPHGATE_TEST_BAD_IPS}"} }, `allow_ips: "10.0.0.1/8" has host bits set`},
		{"unset forward_to", func(h *Webhook) { h.ForwardTo = "{env.QRPHGATE_TEST_UNSET}" }, "forward_to: {env.QRPHGATE_TEST_UNSET} is empty, unset or not known at start-up"},
		{"bad forward_to from env", func(h *Webhook) { h.ForwardTo = "{env.QRPHGATE_TEST_FTP_URL}" }, "forward_to must be an absolute http:// or https:// URL"},
		{"no forward_to", func(h *Webhook) { h.ForwardTo = "" }, "forward_to is required"},
		{"forward_to not http", func(h *Webhook) { h.ForwardTo = "ftp://app/x" }, "forward_to must be an absolute http:// or https:// URL"},
		{"forward_to relative", func(h *Webhook) { h.ForwardTo = "/payments" }, "forward_to must be an absolute"},
		{"forward_to credentials", func(h *Webhook) { h.ForwardTo = "http://user:pw@app/x" }, "forward_to must not carry credentials"},
		{"inline sign secret", func(h *Webhook) { h.SignSecret = testSignSecret }, "sign_secret must be a {env.NAME} or {file.PATH} placeholder"},
		{"short sign secret", func(h *Webhook) { h.SignSecret = "{env.QRPHGATE_TEST_SHORT_KEY}" }, "sign_secret is 19 bytes, want at least 32"},
		{"sign_secret and sign_secrets", func(h *Webhook) { h.SignSecrets = []string{"{env." + testSignEnv + "}"} }, "sign_secret and sign_secrets are both set"},
		{"inline sign secret in a rotation", func(h *Webhook) {
			h.SignSecret, h.SignSecrets = "", []string{"{env." + testSignEnv + "}", testSignSecret}
		}, "sign_secret[2] must be a {env.NAME} or {file.PATH} placeholder"},
		{"empty sign secret in a rotation", func(h *Webhook) { h.SignSecret, h.SignSecrets = "", []string{"{env." + testSignEnv + "}", " "} }, "sign_secret[2] is empty"},
		{"short sign secret in a rotation", func(h *Webhook) {
			h.SignSecret, h.SignSecrets = "", []string{"{env." + testSignEnv + "}", "{env.QRPHGATE_TEST_SHORT_KEY}"}
		}, "sign_secret[2] is 19 bytes, want at least 32"},
		{"the same sign secret twice", func(h *Webhook) {
			h.SignSecret, h.SignSecrets = "", []string{"{env." + testSignEnv + "}", "{env.QRPHGATE_TEST_SIGN_AGAIN}"}
		}, "sign_secret[2] is the same key as sign_secret[1]"},
		{"unknown spool scheme", func(h *Webhook) { h.Spool = "s3://bucket/spool" }, "spool must be a file path or redis://host:port/db"},
		{"store not redis", func(h *Webhook) { h.Store = "memory" }, "store must be redis://host:port/db"},
		{"store inline password", func(h *Webhook) { h.Store = "redis://:" + testSignSecret + "@127.0.0.1:1/0" }, "store: give the Redis password as {env.NAME}"},
		{"spool inline password", func(h *Webhook) { h.Spool = "redis://:" + testSignSecret + "@127.0.0.1:1/0" }, "spool: give the Redis password as {env.NAME}"},
		{"spool cluster inline password", func(h *Webhook) { h.Spool = "redis-cluster://:" + testSignSecret + "@127.0.0.1:1,127.0.0.1:2" }, "spool: give the Redis password as {env.NAME}"},
		{"store sentinel without master", func(h *Webhook) { h.Store = "redis-sentinel://127.0.0.1:1" }, "store: a Redis Sentinel URL names the primary"},
		{"min_replicas with a file spool", func(h *Webhook) { h.MinReplicas = 1 }, "min_replicas needs a Redis spool"},
		{"min_replicas negative", func(h *Webhook) { h.MinReplicas = -1 }, "min_replicas must be a whole number from 0 to 16"},
		{"min_replicas_timeout too long", func(h *Webhook) {
			h.Spool, h.MinReplicas, h.MinReplicasTimeout = "redis://127.0.0.1:1/0", 1, caddy.Duration(6*time.Second)
		}, "min_replicas_timeout must be a positive duration of at most 5s"},
		{"min_replicas_timeout alone", func(h *Webhook) {
			h.Spool, h.MinReplicasTimeout = "redis://127.0.0.1:1/0", caddy.Duration(time.Second)
		}, "min_replicas_timeout needs min_replicas"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := testWebhook(t, "http://127.0.0.1:1/x")
			tc.mutate(h)
			err := h.Provision(newCaddyContext(t))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			for _, secret := range []string{testWebhookKey, testSignSecret, "TEST-ONLY-too-short", "TEST-0000 BAD-CODE"} {
				if strings.Contains(err.Error(), secret) {
					t.Fatalf("error reveals a secret: %v", err)
				}
			}
			if err := h.Cleanup(); err != nil {
				t.Fatalf("cleanup after a failed provision: %v", err)
			}
			if n, ok := webhookWorkers.References("spool:" + h.Spool); ok {
				t.Fatalf("a failed provision left %d references to its spool", n)
			}
		})
	}
}

// allow_ips, activation_codes and forward_to written as {env.*}
// placeholders in the Caddyfile are resolved at provision: the addresses
// and codes the environment names are accepted (not the placeholder text),
// and events reach the app at the URL it names.
func TestWebhookResolvesPlaceholders(t *testing.T) {
	app := newTestApp(t)
	t.Setenv(testWebhookKeyEnv, testWebhookKey)
	t.Setenv("QRPHGATE_TEST_WEBHOOK_IPS", "198.51.100.0/24 203.0.113.10/32")
	t.Setenv("QRPHGATE_TEST_ACT_CODE", "TEST-0000-0000-0001")
	t.Setenv("QRPHGATE_TEST_APP_URL", app.srv.URL+"/payments")
	h := new(Webhook)
	d := caddyfile.NewTestDispenser(`modulus_webhook {
		decryption_key   {env.` + testWebhookKeyEnv + `}
		allow_ips        {env.QRPHGATE_TEST_WEBHOOK_IPS}
		allow_ips        192.0.2.10
		activation_codes {env.QRPHGATE_TEST_ACT_CODE} MERCHANT_ABC_123
		forward_to       {env.QRPHGATE_TEST_APP_URL}
		spool            ` + filepath.Join(t.TempDir(), "webhooks.spool") + `
	}`)
	if err := h.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	provision(t, h, newCaddyContext(t))

	send := func(ref, ip, code string) *httptest.ResponseRecorder {
		r := caddyRequest(sealWebhook(t, `{"action":"QRPH_SUCCESS","referenceNumber":"`+ref+`"}`), ip, false, nil)
		if code != "" {
			r.Header.Set("Activation-Code", code)
		}
		return serve(t, h, r)
	}
	for _, tc := range []struct {
		ref, ip, code string
		status        int
		result        string
	}{
		{"ORDER-ENV-1", "198.51.100.7", "TEST-0000-0000-0001", 200, "received"},
		{"ORDER-ENV-2", "203.0.113.10", "MERCHANT_ABC_123", 200, "received"},
		{"ORDER-ENV-3", "192.0.2.10", "TEST-0000-0000-0001", 200, "received"},
		{"ORDER-ENV-4", "203.0.113.11", "TEST-0000-0000-0001", 403, "forbidden_ip"},
		{"ORDER-ENV-5", "198.51.100.7", "{env.QRPHGATE_TEST_ACT_CODE}", 403, "forbidden_activation_code"},
		{"ORDER-ENV-6", "198.51.100.7", "", 403, "forbidden_activation_code"},
	} {
		if rec := send(tc.ref, tc.ip, tc.code); rec.Code != tc.status || !strings.Contains(rec.Body.String(), tc.result) {
			t.Errorf("%s from %s with code %q: %d %s, want %d %s", tc.ref, tc.ip, tc.code, rec.Code, rec.Body, tc.status, tc.result)
		}
	}
	e2e.WaitFor(t, 15*time.Second, "three deliveries", func() bool { return app.deliveries() == 3 })
	if st := status.snapshot()["inbound"][h.worker.name].(webhookStatus); st.ForwardTo != app.srv.URL+"/payments" {
		t.Errorf("status forward_to %q", st.ForwardTo)
	}
	app.mu.Lock()
	defer app.mu.Unlock()
	codes := map[string]bool{}
	for _, hdr := range app.got {
		codes[hdr.Get("Modulus-Activation-Code")] = true
	}
	if !codes["TEST-0000-0000-0001"] || !codes["MERCHANT_ABC_123"] {
		t.Fatalf("delivered activation codes %v", codes)
	}
}

// The handler checks Caddy's resolved client IP, not the peer address or
// X-Forwarded-For, and end to end delivers a signed event to the app.
func TestWebhookUsesCaddysClientIP(t *testing.T) {
	app := newTestApp(t)
	h := testWebhook(t, app.srv.URL+"/payments")
	provision(t, h, newCaddyContext(t))
	body := sealWebhook(t, `{"action":"QRPH_SUCCESS","referenceNumber":"ORDER-CIP-1"}`)

	// RemoteAddr and X-Forwarded-For claim an allowed address; Caddy
	// resolved another one.
	r := caddyRequest(body, "198.51.100.7", false, nil)
	r.RemoteAddr = "203.0.113.10:4444"
	r.Header.Set("X-Forwarded-For", "203.0.113.10")
	if rec := serve(t, h, r); rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "forbidden_ip") {
		t.Fatalf("disallowed client IP: %d %s", rec.Code, rec.Body)
	}
	// Through trusted proxies outside strict mode, refused whatever the address.
	lax := &caddyhttp.Server{TrustedProxiesStrict: 0}
	if rec := serve(t, h, caddyRequest(body, "203.0.113.10", true, lax)); rec.Code != http.StatusForbidden {
		t.Fatalf("non-strict trusted proxy: %d", rec.Code)
	}
	strict := &caddyhttp.Server{TrustedProxiesStrict: 1}
	rec := serve(t, h, caddyRequest(body, "203.0.113.10", true, strict))
	if rec.Code != http.StatusOK || rec.Body.String() != "{\"received\":true}\n" {
		t.Fatalf("allowed client IP: %d %s", rec.Code, rec.Body)
	}
	pending := func() int {
		st, err := h.worker.spool.Stats(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return st.Pending
	}
	e2e.WaitFor(t, 15*time.Second, "the delivery", func() bool { return app.deliveries() == 1 && pending() == 0 })
	app.mu.Lock()
	hdr, got := app.got[0], app.bodies[0]
	app.mu.Unlock()
	if got != `{"action":"QRPH_SUCCESS","referenceNumber":"ORDER-CIP-1"}` || !strings.HasPrefix(hdr.Get("Webhook-Signature"), "v1,") {
		t.Fatalf("delivered %q with %v", got, hdr)
	}
	// A duplicate is acknowledged and not delivered again.
	rec = serve(t, h, caddyRequest(body, "203.0.113.10", false, nil))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"duplicate":true`) {
		t.Fatalf("duplicate: %d %s", rec.Code, rec.Body)
	}
	// The duplicate was decided before the spool: nothing is pending, so
	// nothing can be delivered a second time.
	if n := pending(); n != 0 {
		t.Fatalf("%d events pending after a duplicate, want 0", n)
	}
	if n := app.deliveries(); n != 1 {
		t.Fatalf("%d deliveries after a duplicate, want 1", n)
	}
}

// One worker per spool survives a reload: the new config's settings take
// over, a failed reload restores the old ones, and the spool closes only
// when the last handler is gone.
func TestWebhookWorkerSurvivesReload(t *testing.T) {
	oldApp, newApp := newTestApp(t), newTestApp(t)
	spool := filepath.Join(t.TempDir(), "shared.spool")
	cfg1 := newCaddyContext(t)
	a := testWebhook(t, oldApp.srv.URL)
	a.Spool = spool
	provision(t, a, cfg1)

	// Same config, same spool, other settings: refused.
	c := testWebhook(t, newApp.srv.URL)
	c.Spool = spool
	if err := c.Provision(cfg1); err == nil || !strings.Contains(err.Error(), "different delivery settings") {
		t.Fatalf("conflicting handlers in one config: %v", err)
	}
	_ = c.Cleanup()

	// A reload that fails after provisioning the new handler.
	b := testWebhook(t, newApp.srv.URL)
	b.Spool = spool
	provision(t, b, newCaddyContext(t))
	if a.worker != b.worker {
		t.Fatal("the reload opened a second worker for the same spool")
	}
	if got := a.worker.deliverer.Config().URL.String(); got != newApp.srv.URL {
		t.Fatalf("worker delivers to %s after the reload, want the new config's", got)
	}
	w := b.worker
	if err := b.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if got := w.deliverer.Config().URL.String(); got != oldApp.srv.URL {
		t.Fatalf("after the failed reload the worker delivers to %s, want the running config's", got)
	}
	rec := serve(t, a, caddyRequest(sealWebhook(t, `{"action":"A","referenceNumber":"R-RELOAD"}`), "203.0.113.9", false, nil))
	if rec.Code != 200 {
		t.Fatalf("status %d", rec.Code)
	}
	e2e.WaitFor(t, 15*time.Second, "delivery to the running config's app", func() bool { return oldApp.deliveries() == 1 })

	if err := a.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if _, ok := webhookWorkers.References("spool:" + spool); ok {
		t.Fatal("the worker outlived its last handler")
	}
	s, err := store.OpenBolt(spool, store.BoltOptions{LockTimeout: time.Second})
	if err != nil {
		t.Fatalf("the spool file is still locked: %v", err)
	}
	_ = s.Close()
}

// A worker's delivery settings change only once a config runs: a config
// that is provisioned and then refused, whether before it starts (cleaned
// up) or after its modulus app started (another app failed to start: Caddy
// stops the started apps, then cleans up), never delivers with its
// settings, and the running config's stay throughout; a reload that starts
// takes over when the config it replaces stops, and keeps the settings
// through that config's cleanup.
func TestWebhookWorkerSettingsFollowStartedConfigs(t *testing.T) {
	spec := filepath.Join(t.TempDir(), "lifecycle.spool")
	w, key, err := acquireWebhookWorker(spec, zap.NewNop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = webhookWorkers.Delete(key) })
	settings := func(u string) inbound.DeliveryConfig {
		parsed, _ := url.Parse(u)
		return inbound.DeliveryConfig{URL: parsed}
	}
	inUse := func() string {
		if u := w.deliverer.Config().URL; u != nil {
			return u.String()
		}
		return ""
	}
	want := func(step, u string) {
		t.Helper()
		if got := inUse(); got != u {
			t.Fatalf("%s: settings in use %q, want %q", step, got, u)
		}
	}
	cfg1, cfg2, cfg3, cfg4 := make(chan struct{}), make(chan struct{}), make(chan struct{}), make(chan struct{})
	r1, err := w.register(cfg1, "A", settings("http://app.test/a"))
	if err != nil {
		t.Fatal(err)
	}
	want("before the first config started", "")
	w.activate(r1, false)
	want("after the first config started", "http://app.test/a")

	// A reload provisions its handler, then Caddy refuses the config before
	// starting it.
	r2, err := w.register(cfg2, "B", settings("http://refused.test/b"))
	if err != nil {
		t.Fatal(err)
	}
	want("a provisioned, not started config", "http://app.test/a")
	w.unregister(r2)
	w.activate(r2, false) // too late: never takes effect
	want("after the config refused at provision", "http://app.test/a")

	// A reload whose modulus app starts, then another app fails to start:
	// Caddy stops the started apps (OnStop) and cleans the config up.
	r4, err := w.register(cfg4, "E", settings("http://refused.test/e"))
	if err != nil {
		t.Fatal(err)
	}
	w.activate(r4, false)
	want("a config whose modulus app started while another app may still fail", "http://app.test/a")
	w.retire(r4)
	want("a config stopped after a failed start", "http://app.test/a")
	w.unregister(r4)
	want("after the config refused at start", "http://app.test/a")

	// Two handlers of one config on this spool must agree.
	if _, err := w.register(cfg3, "C", settings("http://app.test/c")); err != nil {
		t.Fatal(err)
	}
	_, err = w.register(cfg3, "D", settings("http://app.test/d"))
	if err == nil || !strings.Contains(err.Error(), "two modulus_webhook handlers of this config with different delivery settings") ||
		!strings.Contains(err.Error(), spec) {
		t.Fatalf("conflicting handlers of one config: %v", err)
	}

	// A reload that starts: its settings take over when the old config
	// stops (Caddy stops it only once the new one started), and stay when
	// the old config is cleaned up.
	r3 := w.regs[len(w.regs)-1]
	w.activate(r3, false)
	want("the new config started, the old one not stopped yet", "http://app.test/a")
	w.retire(r1)
	want("after the old config stopped", "http://app.test/c")
	w.unregister(r1)
	want("after a successful reload", "http://app.test/c")

	// At exit the last config stops: its settings stay until its cleanup.
	w.retire(r3)
	want("the last config stopped", "http://app.test/c")
}

func adminMux() *http.ServeMux {
	mux := http.NewServeMux()
	for _, r := range (Admin{}).Routes() {
		h := r.Handler
		mux.Handle(r.Pattern, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if err := h.ServeHTTP(w, req); err != nil {
				code := http.StatusInternalServerError
				if ae, ok := err.(caddy.APIError); ok {
					code = ae.HTTPStatus
				}
				http.Error(w, err.Error(), code)
			}
		}))
	}
	return mux
}

func adminCall(t *testing.T, mux *http.ServeMux, method, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	return rec.Code, rec.Body.String()
}

// Dead letters through the admin routes: listed (without the body), then
// replayed and delivered; status and metrics follow.
func TestWebhookDeadLettersAdmin(t *testing.T) {
	app := newTestApp(t)
	app.setStatus(http.StatusInternalServerError)
	h := testWebhook(t, app.srv.URL)
	h.RedeliverFor = caddy.Duration(100 * time.Millisecond)
	h.RetryBase, h.RetryMax = caddy.Duration(10*time.Millisecond), caddy.Duration(20*time.Millisecond)
	provision(t, h, newCaddyContext(t))
	secretNote := "PAYLOAD-MARKER-admin"
	req := caddyRequest(sealWebhook(t, `{"action":"QRPH_SUCCESS","referenceNumber":"ORDER-DL-1","note":"`+secretNote+`"}`), "203.0.113.5", false, nil)
	req.Header.Set("Activation-Code", fakeActivation)
	rec := serve(t, h, req)
	if rec.Code != 200 {
		t.Fatalf("status %d", rec.Code)
	}
	mux := adminMux()
	var list struct {
		DeadLetters []deadLetter `json:"dead_letters"`
		Total       int          `json:"total"`
	}
	e2e.WaitFor(t, 15*time.Second, "the dead letter", func() bool {
		code, body := adminCall(t, mux, http.MethodGet, "/modulus/dead-letters?spool="+h.worker.name)
		_ = json.Unmarshal([]byte(body), &list)
		return code == 200 && list.Total == 1
	})
	dl := list.DeadLetters[0]
	if dl.Reference != "ORDER-DL-1" || dl.Action != "QRPH_SUCCESS" || dl.LastError != "HTTP 500" || dl.Attempts < 2 || dl.Spool != h.worker.name ||
		dl.ActivationCode != "****-****-****-M3L5" {
		t.Fatalf("dead letter %+v", dl)
	}
	_, body := adminCall(t, mux, http.MethodGet, "/modulus/dead-letters")
	if strings.Contains(body, secretNote) || strings.Contains(body, fakeActivation) {
		t.Fatal("the dead-letter listing shows the decrypted body or a whole activation code")
	}
	snap := status.snapshot()["inbound"][h.worker.name].(webhookStatus)
	if snap.DeadLetters != 1 || snap.Pending != 0 || snap.ForwardTo != app.srv.URL || !snap.Signed {
		t.Fatalf("status %+v", snap)
	}
	var metricsOut bytes.Buffer
	metricsSet.WritePrometheus(&metricsOut)
	for _, want := range []string{`qrphgate_webhooks_received_total{result="accepted"}`, `qrphgate_webhook_delivery_attempts_total{outcome="rejected"}`,
		`qrphgate_webhook_dead_letters 1`, `qrphgate_webhook_dead_lettered_total`, `qrphgate_webhook_ack_seconds_bucket{le=`} {
		if !strings.Contains(metricsOut.String(), want) {
			t.Errorf("metrics lack %s", want)
		}
	}

	for _, tc := range []struct {
		method, path string
		code         int
	}{
		{http.MethodPost, "/modulus/dead-letters", 405},
		{http.MethodGet, "/modulus/dead-letters?limit=0", 400},
		{http.MethodGet, "/modulus/dead-letters?limit=x", 400},
		{http.MethodGet, "/modulus/dead-letters/" + dl.ID + "/replay", 405},
		{http.MethodPost, "/modulus/dead-letters/evt_nope/replay", 404},
	} {
		if code, body := adminCall(t, mux, tc.method, tc.path); code != tc.code {
			t.Errorf("%s %s: %d %s, want %d", tc.method, tc.path, code, body, tc.code)
		}
	}

	app.setStatus(http.StatusOK)
	before := app.deliveries()
	code, body := adminCall(t, mux, http.MethodPost, "/modulus/dead-letters/"+dl.ID+"/replay")
	if code != 200 || !strings.Contains(body, dl.ID) {
		t.Fatalf("replay: %d %s", code, body)
	}
	e2e.WaitFor(t, 15*time.Second, "the replayed delivery", func() bool { return app.deliveries() == before+1 })
	e2e.WaitFor(t, 15*time.Second, "the dead letters to empty", func() bool {
		_, body := adminCall(t, mux, http.MethodGet, "/modulus/dead-letters")
		return strings.Contains(body, `"total": 0`)
	})
	app.mu.Lock()
	last := app.got[len(app.got)-1]
	app.mu.Unlock()
	if last.Get("Webhook-Id") != dl.ID || last.Get("Webhook-Attempt") != fmt.Sprint(dl.Attempts+1) {
		t.Fatalf("replayed delivery id %s attempt %s", last.Get("Webhook-Id"), last.Get("Webhook-Attempt"))
	}
}

// metricValue reads one series (name and labels as written) from the
// Prometheus output of the package's metrics set; -1 when it is absent.
func metricValue(t *testing.T, series string) float64 {
	t.Helper()
	var out bytes.Buffer
	metricsSet.WritePrometheus(&out)
	for _, line := range strings.Split(out.String(), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			var f float64
			if _, err := fmt.Sscan(v, &f); err != nil {
				t.Fatalf("metric %s: %q", series, line)
			}
			return f
		}
	}
	return -1
}

// With the app failing, acknowledged events stay pending: the admin status
// and the metrics show how many and how old the oldest is (on a fake
// clock). Once the app recovers they are delivered and the delivery
// latency histogram counts them.
func TestWebhookPendingStatusAndMetrics(t *testing.T) {
	app := newTestApp(t)
	app.setStatus(http.StatusServiceUnavailable)
	h := testWebhook(t, app.srv.URL)
	h.RetryBase, h.RetryMax = caddy.Duration(time.Second), caddy.Duration(2*time.Second)
	fake := clock.NewFake(time.Date(2026, 1, 15, 10, 30, 0, 0, time.UTC))
	h.clock = fake
	provision(t, h, newCaddyContext(t))
	latencyCount := func() float64 { return metricValue(t, metricDeliveryLatency+"_count") }
	before := latencyCount()

	for _, ref := range []string{"ORDER-PEND-1", "ORDER-PEND-2"} {
		body := sealWebhook(t, `{"action":"QRPH_SUCCESS","referenceNumber":"`+ref+`"}`)
		if rec := serve(t, h, caddyRequest(body, "203.0.113.5", false, nil)); rec.Code != 200 {
			t.Fatalf("%s: %d %s", ref, rec.Code, rec.Body)
		}
	}
	e2e.WaitFor(t, 15*time.Second, "the first, failing attempts", func() bool {
		return app.deliveries() >= 2 && h.worker.deliverer.InFlight() == 0
	})
	fake.Advance(90 * time.Second)

	snap := status.snapshot()["inbound"][h.worker.name].(webhookStatus)
	if snap.Pending != 2 || snap.OldestPendingAge != 90 || snap.DeadLetters != 0 {
		t.Fatalf("status %+v, want 2 pending, the oldest 90s old", snap)
	}
	if got := metricValue(t, metricSpoolDepth); got != 2 {
		t.Errorf("%s = %v, want 2", metricSpoolDepth, got)
	}
	if got := metricValue(t, metricOldestPendingSecs); got != 90 {
		t.Errorf("%s = %v, want 90", metricOldestPendingSecs, got)
	}
	if got := latencyCount(); got != before {
		t.Errorf("%s_count moved from %v to %v before any delivery", metricDeliveryLatency, before, got)
	}

	// The app recovers; the fake clock moves on until the retries are due.
	app.setStatus(http.StatusOK)
	e2e.WaitFor(t, 15*time.Second, "the deliveries", func() bool {
		fake.Advance(2 * time.Second)
		st, err := h.worker.deliverer.Status(context.Background())
		return err == nil && st.Pending == 0
	})
	if got := latencyCount(); got != before+2 {
		t.Errorf("%s_count = %v, want %v", metricDeliveryLatency, got, before+2)
	}
	if got := metricValue(t, metricSpoolDepth); got != 0 {
		t.Errorf("%s = %v after the deliveries, want 0", metricSpoolDepth, got)
	}
}

// Without a spool option the spool lives in qrphgate's folder of Caddy's
// data directory, owner-only.
func TestWebhookDefaultSpoolPath(t *testing.T) {
	data := t.TempDir()
	t.Setenv("XDG_DATA_HOME", data)
	h := testWebhook(t, "http://127.0.0.1:1/x")
	h.Spool = ""
	provision(t, h, newCaddyContext(t))
	want := filepath.Join(data, "caddy", "qrphgate", "webhooks.spool")
	if h.worker.name != want {
		t.Fatalf("spool %s, want %s", h.worker.name, want)
	}
	fi, err := os.Stat(want)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("spool file: %v %v", fi, err)
	}
}
