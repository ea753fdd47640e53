package caddymodule

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/certmagic"
)

const (
	testSandboxSecret = "sk_test_FAKE-sandbox-secret-do-not-use"
	testSandboxKey    = "TEST-ONLY-fake-key-do-not-use-32"
)

func TestSandboxCaddyfileErrors(t *testing.T) {
	wrap := func(body string) string {
		return "http://127.0.0.1:2091 {\n\tmodulus_sandbox {\n" + body + "\t}\n}\n"
	}
	for _, tc := range []struct{ name, src, want string }{
		{"argument on the directive", "http://127.0.0.1:2091 {\n\tmodulus_sandbox x\n}\n", "Caddyfile:2"},
		{"unknown option", wrap("\t\tsecret_key sk_test_FAKE\n\t\tqr_url x\n"), `Caddyfile:4|modulus_sandbox: unknown option "qr_url"`},
		{"callbacks empty", wrap("\t\tcallbacks\n"), "Caddyfile:3|modulus_sandbox: callbacks needs at least one value"},
		{"callback relative", wrap("\t\tcallbacks https://localhost:8443/webhooks/modulus /webhooks\n"), "Caddyfile:3|modulus_sandbox: callbacks: callbackUrl must be an absolute URL"},
		{"repeated option", wrap("\t\tlatency 1s\n\t\tlatency 2s\n"), `Caddyfile:4|modulus_sandbox: option "latency" given twice`},
		{"two secret keys", wrap("\t\tsecret_key a b\n"), "Caddyfile:3|modulus_sandbox: secret_key takes exactly one value"},
		{"no encryption key value", wrap("\t\tencryption_key\n"), "Caddyfile:3"},
		{"block under an option", wrap("\t\tlatency 1s {\n\t\t\tx\n\t\t}\n"), "takes no block"},
		{"key encoding", wrap("\t\tkey_encoding sha256\n"), `Caddyfile:3|modulus_sandbox: key_encoding: unknown key encoding "sha256"`},
		{"activation code format", wrap("\t\tactivation_codes TEST-0000-0000-0001 MERCHANT_ABC_123\n"), "Caddyfile:3|modulus_sandbox: activation_codes[2] must look like XXXX-XXXX-XXXX-XXXX"},
		{"activation codes empty", wrap("\t\tactivation_codes\n"), "Caddyfile:3|modulus_sandbox: activation_codes needs at least one value"},
		{"rate limit", wrap("\t\trate_limit 100\n"), "Caddyfile:3|modulus_sandbox: rate_limit"},
		{"retry intervals empty", wrap("\t\tretry_intervals\n"), "Caddyfile:3|modulus_sandbox: retry_intervals needs at least one value"},
		{"retry interval zero", wrap("\t\tretry_intervals 15m 0s\n"), "Caddyfile:3|modulus_sandbox: retry_intervals must be a positive duration"},
		{"retry interval text", wrap("\t\tretry_intervals soon\n"), "Caddyfile:3|modulus_sandbox: retry_intervals must be a positive duration"},
		{"latency negative", wrap("\t\tlatency -1s\n"), "Caddyfile:3|modulus_sandbox: latency"},
		{"error rate above 1", wrap("\t\terror_rate 1.5\n"), "Caddyfile:3|modulus_sandbox: error_rate"},
		{"error rate above 100%", wrap("\t\terror_rate 120%\n"), "error_rate"},
		{"error rate NaN", wrap("\t\terror_rate NaN\n"), "error_rate"},
		{"webhook source hostname", wrap("\t\twebhook_source localhost\n"), "Caddyfile:3|modulus_sandbox: webhook_source must be an IP address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := adaptErr(t, tc.src)
			for _, part := range strings.Split(tc.want, "|") {
				if !strings.Contains(msg, part) {
					t.Fatalf("error %q lacks %q", msg, part)
				}
			}
		})
	}
}

func TestParseRate(t *testing.T) {
	for in, want := range map[string]float64{"0": 0, "0.1": 0.1, "1": 1, "10%": 0.1, "100%": 1, "0%": 0, "2.5%": 0.025} {
		if got, err := parseRate(in); err != nil || got != want {
			t.Errorf("parseRate(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-0.1", "1.01", "101%", "%", "NaN", "Inf", "ten"} {
		if _, err := parseRate(in); err == nil {
			t.Errorf("parseRate(%q) accepted", in)
		}
	}
}

func provisionSandbox(t *testing.T, s *Sandbox) (*Sandbox, error) {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	err := s.Provision(ctx)
	if err != nil {
		_ = s.Cleanup()
	}
	return s, err
}

func TestSandboxProvision(t *testing.T) {
	t.Setenv("QRPHGATE_TEST_SANDBOX_SECRET", testSandboxSecret)
	t.Setenv("QRPHGATE_TEST_SANDBOX_KEY", testSandboxKey)
	for _, tc := range []struct {
		name string
		s    Sandbox
		want string
	}{
		{"no secret key", Sandbox{EncryptionKey: testSandboxKey}, "secret_key is required"},
		{"no encryption key", Sandbox{SecretKey: testSandboxSecret}, "encryption_key is required"},
		{"unset variable", Sandbox{SecretKey: "{env.QRPHGATE_TEST_SANDBOX_UNSET}", EncryptionKey: testSandboxKey}, "secret_key: {env.QRPHGATE_TEST_SANDBOX_UNSET} is empty or unset"},
		{"live key", Sandbox{SecretKey: "sk_live_FAKE-live-key-do-not-use", EncryptionKey: testSandboxKey}, "secret_key is a production key"},
		{"short key", Sandbox{SecretKey: testSandboxSecret, EncryptionKey: "TEST-ONLY-too-short"}, "encryption_key: key must decode to exactly 32 bytes"},
		{"key not base64", Sandbox{SecretKey: testSandboxSecret, EncryptionKey: testSandboxKey, KeyEncoding: "base64"}, "encryption_key"},
		{"bad encoding", Sandbox{SecretKey: testSandboxSecret, EncryptionKey: testSandboxKey, KeyEncoding: "rot13"}, "key_encoding"},
		{"bad rate limit", Sandbox{SecretKey: testSandboxSecret, EncryptionKey: testSandboxKey, RateLimit: "x"}, "rate_limit"},
		{"bad activation code", Sandbox{SecretKey: testSandboxSecret, EncryptionKey: testSandboxKey, ActivationCodes: []string{"abc"}}, "activation_codes[1]"},
		{"bad error rate", Sandbox{SecretKey: testSandboxSecret, EncryptionKey: testSandboxKey, ErrorRate: 2}, "error_rate"},
		{"bad retry interval", Sandbox{SecretKey: testSandboxSecret, EncryptionKey: testSandboxKey, RetryIntervals: []caddy.Duration{-1}}, "retry_intervals"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.s
			_, err := provisionSandbox(t, &s)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			for _, secret := range []string{testSandboxSecret, testSandboxKey, "FAKE-live-key", "TEST-ONLY-too-short"} {
				if strings.Contains(err.Error(), secret) {
					t.Fatalf("error reveals a secret: %v", err)
				}
			}
			if s.poolKey != "" || pooledAccounts() != 0 {
				t.Fatalf("a failed provision left state behind (%d pooled)", pooledAccounts())
			}
		})
	}
}

// TestSandboxStateSurvivesReload: two instances with the same secret key
// (the old and new config during a reload) share one account, which lives
// until the last of them is cleaned up.
func TestSandboxStateSurvivesReload(t *testing.T) {
	t.Setenv("QRPHGATE_TEST_SANDBOX_SECRET", testSandboxSecret)
	cfg := Sandbox{SecretKey: "{env.QRPHGATE_TEST_SANDBOX_SECRET}", EncryptionKey: testSandboxKey}
	oldCfg, newCfg := cfg, cfg
	oldCfg.RateLimit = "1000/1m"
	old, err := provisionSandbox(t, &oldCfg)
	if err != nil {
		t.Fatal(err)
	}
	createThroughPage(t, old, "BEFORE-RELOAD")
	next, err := provisionSandbox(t, &newCfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := old.Cleanup(); err != nil {
		t.Fatal(err)
	}
	st := next.sim.State()
	if len(st.QRs) != 1 || st.QRs[0].Reference != "BEFORE-RELOAD" || st.Settings.RateLimit != "100/1m" {
		t.Fatalf("after reload: %+v", st)
	}
	snap := status.snapshot()["sandbox"]
	if len(snap) != 1 {
		t.Fatalf("status entries %v", snap)
	}
	for name := range snap {
		if !strings.HasPrefix(name, "account-") || strings.Contains(name, "FAKE") {
			t.Fatalf("status name %q", name)
		}
	}

	// The metrics see the calls.
	rec := httptest.NewRecorder()
	if err := next.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/ping", nil), nil); err != nil || rec.Body.String() != "Pong!" {
		t.Fatalf("ping through the handler: %v %q", err, rec.Body.String())
	}
	var buf bytes.Buffer
	metricsSet.WritePrometheus(&buf)
	if !strings.Contains(buf.String(), `qrphgate_sandbox_requests_total{endpoint="ping",status="200"}`) {
		t.Fatalf("metrics lack the ping:\n%s", buf.String())
	}

	if err := next.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if pooledAccounts() != 0 || len(status.snapshot()["sandbox"]) != 0 {
		t.Fatal("the account outlived its last user")
	}
	// A new instance after that starts from an empty account.
	fresh, err := provisionSandbox(t, &cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Cleanup()
	if n := len(fresh.sim.State().QRs); n != 0 {
		t.Fatalf("%d QRs in a fresh account", n)
	}
}

func createThroughPage(t *testing.T, s *Sandbox, ref string) {
	t.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/sandbox/qr", strings.NewReader(`{"amount":"1.00","currency":"PHP","merchantReferenceNumber":"`+ref+`"}`))
	req.Header.Set("Content-Type", "application/json")
	if err := s.ServeHTTP(rec, req, nil); err != nil || rec.Code != http.StatusOK {
		t.Fatalf("create: %v %d %s", err, rec.Code, rec.Body.String())
	}
}

// TestInternalCARoots: the deliveries trust Caddy's internal CA once it is
// in storage, and only then.
func TestInternalCARoots(t *testing.T) {
	storage := &certmagic.FileStorage{Path: t.TempDir()}
	roots := internalCARoots(storage)
	if roots() != nil {
		t.Fatal("roots before the CA exists")
	}
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Caddy Local Authority - test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := storage.Store(context.Background(), internalCARootKey, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})); err != nil {
		t.Fatal(err)
	}
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), DNSNames: []string{"localhost"}, NotBefore: ca.NotBefore, NotAfter: ca.NotAfter}
	caCert, _ := x509.ParseCertificate(caDER)
	leafDER, _ := x509.CreateCertificate(rand.Reader, leaf, caCert, &leafKey.PublicKey, caKey)
	leafCert, _ := x509.ParseCertificate(leafDER)
	pool := roots()
	if pool == nil {
		t.Fatal("no roots after the CA appeared")
	}
	if _, err := leafCert.Verify(x509.VerifyOptions{Roots: pool, DNSName: "localhost"}); err != nil {
		t.Fatalf("a tls internal certificate does not verify: %v", err)
	}
	if roots() != pool {
		t.Fatal("the pool is rebuilt on every delivery")
	}
}

func pooledAccounts() int {
	n := 0
	sandboxStores.Range(func(any, any) bool { n++; return true })
	return n
}
