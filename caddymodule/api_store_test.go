package caddymodule

import (
	"fmt"
	"net"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/redis/go-redis/v9"

	"github.com/qrphgate/qrphgate/internal/fakemodulus"
	"github.com/qrphgate/qrphgate/internal/testenv"
	"github.com/qrphgate/qrphgate/proxy"
	"github.com/qrphgate/qrphgate/proxy/outbound"
	"github.com/qrphgate/qrphgate/store"
)

func TestCheckStoreSpec(t *testing.T) {
	for spec, ok := range map[string]bool{
		"":                                       true,
		"memory":                                 true,
		"redis://127.0.0.1:6379":                 true,
		"redis://127.0.0.1:6379/2":               true,
		"rediss://cache.internal:6380/0":         true,
		"redis://:{env.REDIS_PASSWORD}@h:6379/0": true,
		"file:///var/lib/qrphgate/outbound.db":   true,
		"file://{env.STATE_DIR}/outbound.db":     true,
		"file://relative/outbound.db":            false,
		"file://":                                false,
		"file:///var/lib/qrphgate/":              false,
		"file":                                   false,
		"redis://127.0.0.1:6379/x":               false,
		"redis:///0":                             false,
		"postgres://h/db":                        false,
		"memcached":                              false,
	} {
		if err := checkStoreSpec(spec); (err == nil) != ok {
			t.Errorf("%q: %v", spec, err)
		}
	}
	if pw := redisPassword("redis://:{env.X}@h:6379/0"); pw != "{env.X}" {
		t.Fatalf("password %q", pw)
	}
	if pw := redisPassword("redis://h:6379/0"); pw != "" {
		t.Fatalf("password %q", pw)
	}
}

// createVia asks api for a 1.00 PHP QR with reference ref.
func createVia(api *API, ref string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("POST", "/v1/pay/qr", strings.NewReader(`{"amount":"1.00","currency":"PHP","merchantReferenceNumber":"`+ref+`"}`))
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	_ = api.ServeHTTP(w, r, nil)
	return w
}

// Two gateways on one Redis (two replicas: separate clients, pacers and
// process-local state) share the rate budget and the idempotency cache.
func TestAPIRedisStoreSharedByReplicas(t *testing.T) {
	if c, err := net.DialTimeout("tcp", "127.0.0.1:6379", time.Second); err != nil {
		testenv.Missing(t, "redis on 127.0.0.1:6379: %v", err)
	} else {
		c.Close()
	}
	setFakeEnv(t)
	// A key no earlier run used: the account (and so the Redis keys) is new.
	secret := fmt.Sprintf("sk_test_FAKEredis%d", time.Now().UnixNano())
	t.Setenv("QG_TEST_SECRET", secret)
	fake := fakemodulus.New(t, fakemodulus.Options{SecretKey: secret, EncryptionKey: []byte(fakeEncryptionKey)})
	replica := func(host string) *API {
		a := sandboxAPI(fake.URL)
		a.RateLimit = "3/1m"
		// Long enough for a replay to wait for the first replica's answer,
		// which is written to Redis just after the app has it (see
		// docs/performance.md); far shorter than the next free slot, so
		// the call over the limit is still refused at once.
		wait := caddy.Duration(time.Second)
		a.MaxWait = &wait
		a.Store = "redis://" + host + ":6379/0"
		if err := a.Provision(testContext(t)); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = a.Cleanup() })
		return a
	}
	a, b := replica("127.0.0.1"), replica("localhost")
	if w := createVia(a, "RED-1"); w.Code != 200 {
		t.Fatalf("a: %d %s", w.Code, w.Body)
	}
	w := createVia(b, "RED-1")
	if w.Code != 200 || w.Header().Get(proxy.HeaderIdempotentReplayed) != "true" {
		t.Fatalf("b replay: %d %v", w.Code, w.Header())
	}
	if w := createVia(b, "RED-2"); w.Code != 200 {
		t.Fatal(w.Code)
	}
	if w := createVia(a, "RED-3"); w.Code != 200 {
		t.Fatal(w.Code)
	}
	// Three calls in the window between the two replicas: the fourth is refused.
	w = createVia(b, "RED-4")
	if w.Code != 429 || !strings.Contains(w.Body.String(), outbound.CodeRateLimited) {
		t.Fatalf("over the shared limit: %d %s", w.Code, w.Body)
	}
	if n := len(fake.Calls()); n != 3 {
		t.Fatalf("%d provider calls, want 3", n)
	}
	st := a.engine.Status(t.Context())
	if st.Limiter.Store != "redis" || st.Limiter.Used != 3 {
		t.Fatalf("status %+v", st.Limiter)
	}
}

// store file:// keeps the idempotency cache and the rate budget across a
// restart of the sidecar (here: the handler cleaned up, the pool entry
// destroyed and the file opened again).
func TestAPIFileStoreSurvivesRestart(t *testing.T) {
	setFakeEnv(t)
	fake := fakemodulus.New(t, fakemodulus.Options{SecretKey: fakeSandboxKey, EncryptionKey: []byte(fakeEncryptionKey)})
	path := filepath.Join(t.TempDir(), "state", "outbound.db")
	start := func() *API {
		a := sandboxAPI(fake.URL)
		a.RateLimit = "2/1m"
		zero := caddy.Duration(0)
		a.MaxWait = &zero
		a.Store = "file://" + path
		if err := a.Provision(testContext(t)); err != nil {
			t.Fatal(err)
		}
		return a
	}
	a := start()
	if w := createVia(a, "FILE-1"); w.Code != 200 {
		t.Fatalf("create: %d %s", w.Code, w.Body)
	}
	if w := createVia(a, "FILE-2"); w.Code != 200 {
		t.Fatalf("create: %d %s", w.Code, w.Body)
	}
	if st := a.engine.Status(t.Context()); st.Limiter.Store != "file" {
		t.Fatalf("status store %q", st.Limiter.Store)
	}
	if err := a.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("no store file: %v", err)
	}

	b := start()
	defer b.Cleanup()
	w := createVia(b, "FILE-1")
	if w.Code != 200 || w.Header().Get(proxy.HeaderIdempotentReplayed) != "true" {
		t.Fatalf("replay after restart: %d %v", w.Code, w.Header())
	}
	if w := createVia(b, "FILE-3"); w.Code != 429 {
		t.Fatalf("a third call in the window after restart: %d %s (the budget forgot two calls)", w.Code, w.Body)
	}
	if n := len(fake.Calls()); n != 2 {
		t.Fatalf("%d provider calls, want 2", n)
	}
}

// A password with URL metacharacters survives placeholder resolution
// intact and never becomes part of the host (which logs and errors show).
func TestResolveRedisURLEscapesThePassword(t *testing.T) {
	const pw = "FAKE/p@ss#w%rd x:y"
	t.Setenv("QRPHGATE_TEST_REDIS_PW", pw)
	t.Setenv("QRPHGATE_TEST_REDIS_HOST", "redis.internal:6380")
	repl := caddy.NewReplacer()
	for _, spec := range []string{
		"rediss://:{env.QRPHGATE_TEST_REDIS_PW}@redis.internal:6380/2",
		"redis://app:{env.QRPHGATE_TEST_REDIS_PW}@{env.QRPHGATE_TEST_REDIS_HOST}/2",
	} {
		resolved := resolveRedisURL(repl, spec)
		u, err := url.Parse(resolved)
		if err != nil {
			t.Fatalf("%s: %v", spec, err)
		}
		if got, _ := u.User.Password(); got != pw || u.Host != "redis.internal:6380" || u.Path != "/2" {
			t.Fatalf("%s: password %q host %q path %q", spec, got, u.Host, u.Path)
		}
		opts, err := redis.ParseURL(resolved)
		if err != nil || opts.Password != pw || opts.DB != 2 {
			t.Fatalf("%s: go-redis reads %+v, %v", spec, opts, err)
		}
		if red := store.RedactURL(resolved); strings.Contains(red, "p@ss") || strings.Contains(red, "FAKE") {
			t.Fatalf("redacted URL reveals the password: %s", red)
		}
	}
	if got := resolveRedisURL(repl, "redis://127.0.0.1:6379/0"); got != "redis://127.0.0.1:6379/0" {
		t.Fatalf("URL without user info: %s", got)
	}
}
