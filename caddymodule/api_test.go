package caddymodule

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/qrphgate/qrphgate/internal/fakemodulus"
	"github.com/qrphgate/qrphgate/proxy"
	"github.com/qrphgate/qrphgate/proxy/outbound"
)

// Obviously fake credentials.
const (
	fakeSandboxKey    = "sk_test_FAKEapiFAKEapiFAKEapi000000000000"
	fakeLiveKey       = "sk_live_FAKEapiFAKEapiFAKEapi000000000000"
	fakeEncryptionKey = "TEST-ONLY-fake-key-do-not-use-32"
	fakeActivation    = "A9X4-B7P2-Q6Z8-M3L5"
)

func testContext(t *testing.T) caddy.Context {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	return ctx
}

func setFakeEnv(t *testing.T) {
	t.Setenv("QG_TEST_SECRET", fakeSandboxKey)
	t.Setenv("QG_TEST_LIVE_SECRET", fakeLiveKey)
	t.Setenv("QG_TEST_ENC", fakeEncryptionKey)
	t.Setenv("QG_TEST_ACT", fakeActivation)
}

func sandboxAPI(qrURL string) *API {
	return &API{Environment: "sandbox", SecretKey: "{env.QG_TEST_SECRET}", EncryptionKey: "{env.QG_TEST_ENC}",
		ActivationCode: "{env.QG_TEST_ACT}", QRURL: qrURL, WebhooksURL: qrURL}
}

// Start-up refuses what would be unsafe, naming the option and never the value.
func TestAPIProvisionRefuses(t *testing.T) {
	setFakeEnv(t)
	t.Setenv("QG_TEST_LONG_KEY", strings.Repeat("k", 48))
	t.Setenv("QG_TEST_BAD_ACT", "a9x4-b7p2-q6z8-m3l5")
	tests := []struct {
		name   string
		mutate func(a *API)
		want   string
	}{
		{"no environment", func(a *API) { a.Environment = "" }, "environment is required"},
		{"live key in sandbox", func(a *API) { a.SecretKey = "{env.QG_TEST_LIVE_SECRET}" }, "secret_key is a production key"},
		{"test key in production", func(a *API) { a.Environment = "production"; a.QRURL, a.WebhooksURL = "", "" }, "secret_key is a sandbox key"},
		{"production host in sandbox", func(a *API) { a.QRURL = "https://qrph.moduluslabs.io" }, "qr_url points at the production host"},
		{"sandbox webhooks host in production", func(a *API) {
			a.Environment, a.SecretKey, a.QRURL, a.WebhooksURL = "production", "{env.QG_TEST_LIVE_SECRET}", "", "https://webhooks.sbx.moduluslabs.io"
		}, "webhooks_url points at the sandbox host"},
		{"plain http off loopback", func(a *API) { a.QRURL = "http://qrph.example.com" }, "qr_url must use https"},
		{"48-byte key", func(a *API) { a.EncryptionKey = "{env.QG_TEST_LONG_KEY}" }, "encryption_key: key must decode to exactly 32 bytes: utf8 key decodes to 48 bytes"},
		{"key not hex", func(a *API) { a.KeyEncoding = "hex" }, "encryption_key: key is not valid hex"},
		{"malformed activation code", func(a *API) { a.ActivationCode = "{env.QG_TEST_BAD_ACT}" }, "activation_code must look like XXXX-XXXX-XXXX-XXXX"},
		{"malformed merchant", func(a *API) { a.Merchants = []string{"A9X4-B7P2-Q6Z8-M3L5", "nope"} }, "merchants[2] must look like"},
		{"no merchant at all", func(a *API) { a.ActivationCode = "" }, "activation_code (or merchants) is required"},
		{"unset variable", func(a *API) { a.EncryptionKey = "{env.QG_TEST_UNSET_123}" }, "encryption_key: {env.QG_TEST_UNSET_123} is empty or unset"},
		{"inline secret in production", func(a *API) {
			a.Environment, a.SecretKey, a.QRURL, a.WebhooksURL = "production", fakeLiveKey, "", ""
		}, "secret_key must be a {env.NAME} or {file.PATH} placeholder"},
		{"inline secret in the sandbox", func(a *API) { a.SecretKey = fakeSandboxKey }, "secret_key must be a {env.NAME} or {file.PATH} placeholder"},
		{"inline encryption key in the sandbox", func(a *API) { a.EncryptionKey = fakeEncryptionKey }, "encryption_key must be a {env.NAME} or {file.PATH} placeholder"},
		{"inline activation code in production", func(a *API) {
			a.Environment, a.SecretKey, a.QRURL, a.WebhooksURL, a.ActivationCode = "production", "{env.QG_TEST_LIVE_SECRET}", "", "", fakeActivation
		}, "with environment production, activation_code must be a {env.NAME} or {file.PATH} placeholder"},
		{"inline redis password in production", func(a *API) {
			a.Environment, a.SecretKey, a.QRURL, a.WebhooksURL, a.Store = "production", "{env.QG_TEST_LIVE_SECRET}", "", "", "redis://:hunter2hunter2@127.0.0.1:6379/0"
		}, "store: give the Redis password as {env.NAME}"},
		{"bad policy file", func(a *API) { a.Policy = "/nonexistent/policy.yaml" }, "policy: loading policy /nonexistent/policy.yaml"},
		{"bad breaker", func(a *API) { a.CircuitBreaker = &BreakerConfig{Probes: -1} }, "circuit_breaker probes must be a whole number from 1 to 1000"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := sandboxAPI("http://127.0.0.1:1")
			tc.mutate(a)
			err := a.Provision(testContext(t))
			defer a.Cleanup()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			for _, secret := range []string{fakeSandboxKey, fakeLiveKey, fakeEncryptionKey, strings.Repeat("k", 48), "hunter2hunter2", "a9x4-b7p2"} {
				if strings.Contains(err.Error(), secret) {
					t.Fatalf("error reveals a secret: %v", err)
				}
			}
		})
	}
}

// An unreachable Redis does not stop start-up (an outage must not become a
// crash loop of every replica): calls get 503 store_unavailable, nothing
// reaches the provider, and nothing reveals the password.
func TestAPIRedisStoreUnreachable(t *testing.T) {
	setFakeEnv(t)
	t.Setenv("QG_TEST_REDIS_PW", "s3cret-redis-password")
	fake := fakemodulus.New(t, fakemodulus.Options{SecretKey: fakeSandboxKey, EncryptionKey: []byte(fakeEncryptionKey)})
	a := sandboxAPI(fake.URL)
	a.Store = "redis://:{env.QG_TEST_REDIS_PW}@127.0.0.1:1/0"
	if err := a.Provision(testContext(t)); err != nil {
		t.Fatalf("start-up with Redis down: %v", err)
	}
	defer a.Cleanup()
	w := createVia(a, "DOWN-1")
	if w.Code != 503 || !strings.Contains(w.Body.String(), `"store_unavailable"`) || w.Header().Get("Retry-After") == "" {
		t.Fatalf("create with Redis down: %d %s", w.Code, w.Body)
	}
	if n := len(fake.Calls()); n != 0 {
		t.Fatalf("%d provider calls without a rate slot", n)
	}
	b, _ := json.Marshal(status.snapshot())
	if !strings.Contains(string(b), `"redis 127.0.0.1:1/0"`) || !strings.Contains(string(b), `"up":false`) || strings.Contains(string(b), "s3cret") {
		t.Fatalf("status: %s", b)
	}
	var m bytes.Buffer
	metricsSet.WritePrometheus(&m)
	label := storeLabel("redis 127.0.0.1:1/0")
	for _, want := range []string{`qrphgate_store_up{store="` + label + `"} 0`, `qrphgate_store_transitions_total{store="` + label + `",to="down"} 1`} {
		if !strings.Contains(m.String(), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// The module serves the engine, reports status and metrics, and its shared
// state (breakers, pacer, store) survives a reload.
func TestAPIServesAndSurvivesReload(t *testing.T) {
	setFakeEnv(t)
	fake := fakemodulus.New(t, fakemodulus.Options{SecretKey: fakeSandboxKey, EncryptionKey: []byte(fakeEncryptionKey)})
	cfg := func() *API {
		a := sandboxAPI(fake.URL)
		a.CircuitBreaker = &BreakerConfig{Failures: 1}
		return a
	}
	old := cfg()
	if err := old.Provision(testContext(t)); err != nil {
		t.Fatal(err)
	}
	serve := func(a *API, method, path, body string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, path, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		if err := a.ServeHTTP(w, r, nil); err != nil {
			t.Fatal(err)
		}
		return w
	}
	if rec := serve(old, "POST", "/v1/pay/qr", `{"amount":"500.00","currency":"PHP","merchantReferenceNumber":"MOD-1"}`); rec.Code != 200 {
		t.Fatalf("create: %d %s", rec.Code, rec.Body)
	}
	fake.Fail(fakemodulus.Fault{Status: 500})
	if rec := serve(old, "POST", "/v1/pay/qr", `{"amount":"500.00","currency":"PHP","merchantReferenceNumber":"MOD-2"}`); rec.Code != 502 {
		t.Fatalf("500: %d", rec.Code)
	}

	// Reload: the new config is provisioned before the old is cleaned up.
	next := cfg()
	if err := next.Provision(testContext(t)); err != nil {
		t.Fatal(err)
	}
	if err := old.Cleanup(); err != nil {
		t.Fatal(err)
	}
	defer next.Cleanup()
	rec := serve(next, "POST", "/v1/pay/qr", `{"amount":"500.00","currency":"PHP","merchantReferenceNumber":"MOD-3"}`)
	if rec.Code != 503 || !strings.Contains(rec.Body.String(), outbound.CodeBreakerOpen) {
		t.Fatalf("the open breaker did not survive the reload: %d %s", rec.Code, rec.Body)
	}
	// So did the idempotency cache (same memory store).
	if rec := serve(next, "POST", "/v1/pay/qr", `{"amount":"500.00","currency":"PHP","merchantReferenceNumber":"MOD-1"}`); rec.Code != 200 || rec.Header().Get(proxy.HeaderIdempotentReplayed) != "true" {
		t.Fatalf("replay after reload: %d %v", rec.Code, rec.Header())
	}

	snap := status.snapshot()["outbound"]
	var st outbound.Status
	// Entries are named by environment, QR host and account id, so two
	// accounts on one host do not hide each other.
	for name, v := range snap {
		if strings.HasPrefix(name, "sandbox 127.0.0.1") && strings.HasSuffix(name, " "+outbound.AccountID(fakeSandboxKey)) {
			st = v.(outbound.Status)
		}
	}
	if st.Account != outbound.AccountID(fakeSandboxKey) {
		t.Fatalf("status account %q, entries %v", st.Account, snap)
	}
	if st.Breakers["qr"].State != "open" || st.Limiter.Used < 2 || st.Limiter.Store != "memory" || st.Environment != "sandbox" {
		t.Fatalf("status %+v", st)
	}

	var out bytes.Buffer
	metricsSet.WritePrometheus(&out)
	for _, want := range []string{
		`qrphgate_outbound_upstream_requests_total{environment="sandbox",endpoint="create_qr",status="200"}`,
		`qrphgate_outbound_upstream_requests_total{environment="sandbox",endpoint="create_qr",status="500"}`,
		`qrphgate_outbound_upstream_duration_seconds_bucket{environment="sandbox",endpoint="create_qr",le="0.005"}`,
		`qrphgate_outbound_queue_wait_seconds_bucket{environment="sandbox",le="0.001"}`,
		`qrphgate_outbound_breaker_state{environment="sandbox",account="` + outbound.AccountID(fakeSandboxKey) + `",upstream="qr"} 2`,
		`qrphgate_outbound_breaker_transitions_total{environment="sandbox",account="` + outbound.AccountID(fakeSandboxKey) + `",upstream="qr",to="open"}`,
		`qrphgate_outbound_idempotent_replays_total{environment="sandbox"}`,
		`qrphgate_outbound_responses_total{environment="sandbox",endpoint="create_qr",status="503",code="breaker_open"}`,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(out.String(), "MOD-1") || strings.Contains(out.String(), "127.0.0.1") {
		t.Fatal("metrics carry a reference or an address")
	}
}

func TestAPICleanupHalfProvisioned(t *testing.T) {
	a := &API{Environment: "sandbox"}
	_ = a.Provision(testContext(t)) // fails: no secret_key
	if err := a.Cleanup(); err != nil {
		t.Fatalf("cleanup after a failed provision: %v", err)
	}
	if err := (&API{}).Cleanup(); err != nil {
		t.Fatal(err)
	}
}

func TestAPIFileSecrets(t *testing.T) {
	setFakeEnv(t)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "enc")
	if err := os.WriteFile(keyFile, []byte(fakeEncryptionKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a := sandboxAPI("http://127.0.0.1:1")
	a.EncryptionKey = "{file." + keyFile + "}"
	if err := a.Provision(testContext(t)); err != nil {
		t.Fatal(err)
	}
	defer a.Cleanup()
	r := httptest.NewRequest(http.MethodGet, "/nope", nil)
	w := httptest.NewRecorder()
	_ = a.ServeHTTP(w, r, nil)
	if w.Code != 404 || !strings.Contains(w.Body.String(), `"not_found"`) {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
}

// Two accounts on one provider host each have their own status entry.
func TestAPIStatusPerAccount(t *testing.T) {
	setFakeEnv(t)
	t.Setenv("QG_TEST_SECRET2", "sk_test_FAKEsecondFAKEsecondFAKE000000000")
	first, second := sandboxAPI("http://127.0.0.1:1"), sandboxAPI("http://127.0.0.1:1")
	second.SecretKey = "{env.QG_TEST_SECRET2}"
	for _, a := range []*API{first, second} {
		if err := a.Provision(testContext(t)); err != nil {
			t.Fatal(err)
		}
		defer a.Cleanup()
	}
	accounts := map[string]bool{}
	for name, v := range status.snapshot()["outbound"] {
		if strings.HasPrefix(name, "sandbox 127.0.0.1:1 ") {
			accounts[v.(outbound.Status).Account] = true
		}
	}
	if !accounts[outbound.AccountID(fakeSandboxKey)] || !accounts[outbound.AccountID("sk_test_FAKEsecondFAKEsecondFAKE000000000")] {
		t.Fatalf("status entries for %v, want both accounts", accounts)
	}
}
