package caddymodule

import (
	"fmt"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/qrphgate/qrphgate/internal/fakemodulus"
	"github.com/qrphgate/qrphgate/internal/testenv"
	"github.com/qrphgate/qrphgate/proxy"
)

func TestCheckStoreSpec(t *testing.T) {
	for spec, ok := range map[string]bool{
		"":                                       true,
		"memory":                                 true,
		"redis://127.0.0.1:6379":                 true,
		"redis://127.0.0.1:6379/2":               true,
		"rediss://cache.internal:6380/0":         true,
		"redis://:{env.REDIS_PASSWORD}@h:6379/0": true,
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
		zero := caddy.Duration(0)
		a.MaxWait = &zero
		a.Store = "redis://" + host + ":6379/0"
		if err := a.Provision(testContext(t)); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = a.Cleanup() })
		return a
	}
	a, b := replica("127.0.0.1"), replica("localhost")
	create := func(api *API, ref string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("POST", "/v1/pay/qr", strings.NewReader(`{"amount":"1.00","currency":"PHP","merchantReferenceNumber":"`+ref+`"}`))
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		_ = api.ServeHTTP(w, r, nil)
		return w
	}
	if w := create(a, "RED-1"); w.Code != 200 {
		t.Fatalf("a: %d %s", w.Code, w.Body)
	}
	w := create(b, "RED-1")
	if w.Code != 200 || w.Header().Get(proxy.HeaderIdempotentReplayed) != "true" {
		t.Fatalf("b replay: %d %v", w.Code, w.Header())
	}
	if w := create(b, "RED-2"); w.Code != 200 {
		t.Fatal(w.Code)
	}
	if w := create(a, "RED-3"); w.Code != 200 {
		t.Fatal(w.Code)
	}
	// Three calls in the window between the two replicas: the fourth is refused.
	w = create(b, "RED-4")
	if w.Code != 429 || !strings.Contains(w.Body.String(), proxy.CodeRateLimited) {
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
