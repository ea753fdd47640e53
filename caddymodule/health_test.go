package caddymodule

import (
	"crypto/x509"
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/qrphgate/qrphgate/internal/clock"
	"github.com/qrphgate/qrphgate/internal/e2e"
	"github.com/qrphgate/qrphgate/internal/fakemodulus"
	"github.com/qrphgate/qrphgate/internal/redistest"
	"github.com/qrphgate/qrphgate/proxy/health"
)

// newHealth provisions a modulus_health on a fake clock (no config: its
// start hook runs at once) and cleans it up when the test ends.
func newHealth(t *testing.T, h *Health) (*Health, *clock.Fake) {
	t.Helper()
	clk := clock.NewFake(time.Now())
	h.clock = clk
	if err := h.Provision(testContext(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Cleanup() })
	return h, clk
}

// probe answers one readiness request.
func probe(t *testing.T, h *Health) (int, health.Report) {
	t.Helper()
	rec := httptest.NewRecorder()
	if err := h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil), nil); err != nil {
		t.Fatal(err)
	}
	var rep health.Report
	if err := json.Unmarshal(rec.Body.Bytes(), &rep); err != nil {
		t.Fatalf("readiness body %q: %v", rec.Body, err)
	}
	if rec.Header().Get("Content-Type") != "application/json" || rep.HTTPStatus() != rec.Code {
		t.Fatalf("answer %d %v for %+v", rec.Code, rec.Header(), rep)
	}
	return rec.Code, rep
}

// checkWith returns the one check whose name starts with prefix and ends
// with suffix.
func checkWith(t *testing.T, rep health.Report, prefix string, suffix ...string) health.Check {
	t.Helper()
	var found []health.Check
	for name, c := range rep.Checks {
		if strings.HasPrefix(name, prefix) && (len(suffix) == 0 || strings.HasSuffix(name, suffix[0])) {
			found = append(found, c)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d checks %s*%v in %+v, want one", len(found), prefix, suffix, rep.Checks)
	}
	return found[0]
}

// waitCheck advances the fake clock by step (when positive) and polls the
// readiness answer until the check named prefix* has status want.
func waitCheck(t *testing.T, h *Health, clk *clock.Fake, step time.Duration, prefix string, want health.Status) health.Report {
	t.Helper()
	if step > 0 {
		clk.WaitForTimers(1, 5*time.Second)
		clk.Advance(step)
	}
	var rep health.Report
	e2e.WaitFor(t, 15*time.Second, prefix+" to be "+string(want), func() bool {
		_, rep = probe(t, h)
		for name, c := range rep.Checks {
			if strings.HasPrefix(name, prefix) && c.Status == want {
				return true
			}
		}
		return false
	})
	return rep
}

// A Redis spool and store: stopping the server makes the spool and store
// checks unavailable (503, qrphgate_ready 0) at the next probe round;
// restarting it brings them back (200, qrphgate_ready 1). Between rounds
// the answers come from memory: probes never touch Redis.
func TestHealthSpoolAndStoreFollowRedis(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	app := newTestApp(t)
	wh := testWebhook(t, app.srv.URL)
	wh.Spool = srv.URL()
	provision(t, wh, newCaddyContext(t))
	h, clk := newHealth(t, &Health{CheckInterval: caddy.Duration(10 * time.Second)})

	waitCheck(t, h, clk, 0, "spool:", health.OK)
	rep := waitCheck(t, h, clk, 0, "store:", health.OK)
	if code, _ := probe(t, h); code != 200 || metricValue(t, metricReady) != 1 {
		t.Fatalf("healthy: %d, qrphgate_ready %v (%+v)", code, metricValue(t, metricReady), rep)
	}
	srv.Stop()
	waitCheck(t, h, clk, 10*time.Second, "spool:", health.Unavailable)
	rep = waitCheck(t, h, clk, 0, "store:", health.Unavailable)
	if code, _ := probe(t, h); code != http.StatusServiceUnavailable || rep.Status != health.Unavailable || metricValue(t, metricReady) != 0 {
		t.Fatalf("Redis down: %d %+v, qrphgate_ready %v", code, rep, metricValue(t, metricReady))
	}
	if c := checkWith(t, rep, "store:"); !strings.Contains(c.Message, "store unavailable") || c.CheckedAt.IsZero() {
		t.Fatalf("store check %+v", c)
	}
	srv.Restart()
	e2e.WaitFor(t, 15*time.Second, "both checks back", func() bool {
		clk.Advance(10 * time.Second)
		_, rep := probe(t, h)
		return checkWith(t, rep, "spool:").Status == health.OK && checkWith(t, rep, "store:").Status == health.OK
	})
	if code, _ := probe(t, h); code != 200 || metricValue(t, metricReady) != 1 {
		t.Fatalf("after the restart: %d, qrphgate_ready %v", code, metricValue(t, metricReady))
	}
}

// A Redis server counts as unavailable only when the webhooks depend on it:
// one that only modulus_api's store uses is degraded when it stops (the
// replica still takes webhooks); one that a file spool's de-duplication
// (store) uses is unavailable. Both come back with their servers.
func TestHealthStoreUnavailableOnlyForWebhooks(t *testing.T) {
	setFakeEnv(t)
	apiRedis, hookRedis := redistest.Start(t, redistest.Options{}), redistest.Start(t, redistest.Options{})
	fake := fakemodulus.New(t, fakemodulus.Options{SecretKey: fakeSandboxKey, EncryptionKey: []byte(fakeEncryptionKey)})
	a := sandboxAPI(fake.URL)
	a.Store = apiRedis.URL()
	if err := a.Provision(testContext(t)); err != nil {
		t.Fatal(err)
	}
	defer a.Cleanup()
	app := newTestApp(t)
	wh := testWebhook(t, app.srv.URL) // a file spool
	wh.Store = hookRedis.URL()
	provision(t, wh, newCaddyContext(t))
	h, clk := newHealth(t, &Health{CheckInterval: caddy.Duration(10 * time.Second)})
	checkOf := func(url string) string {
		name := ""
		storePool.Range(func(k, v any) bool {
			if k == "redis|"+url {
				name = v.(redisConn).Name()
			}
			return true
		})
		if name == "" {
			t.Fatalf("no pooled connection to %s", url)
		}
		return "store:" + storeLabel(name)
	}
	apiCheck, hookCheck := checkOf(apiRedis.URL()), checkOf(hookRedis.URL())
	waitCheck(t, h, clk, 0, apiCheck, health.OK)
	waitCheck(t, h, clk, 0, hookCheck, health.OK)

	apiRedis.Stop()
	rep := waitCheck(t, h, clk, 10*time.Second, apiCheck, health.Degraded)
	if code, _ := probe(t, h); code != http.StatusOK || !strings.Contains(rep.Checks[apiCheck].Message, "webhooks are still taken") {
		t.Fatalf("modulus_api's Redis down: %d %+v", code, rep)
	}
	hookRedis.Stop()
	waitCheck(t, h, clk, 10*time.Second, hookCheck, health.Unavailable)
	if code, rep := probe(t, h); code != http.StatusServiceUnavailable || rep.Checks[apiCheck].Status != health.Degraded {
		t.Fatalf("the webhooks' Redis down too: %d %+v", code, rep)
	}
	hookRedis.Restart()
	apiRedis.Restart()
	e2e.WaitFor(t, 15*time.Second, "both checks back", func() bool {
		clk.Advance(10 * time.Second)
		_, rep := probe(t, h)
		return rep.Checks[apiCheck].Status == health.OK && rep.Checks[hookCheck].Status == health.OK
	})
}

// The credentials fuse: rejected credentials make the check degraded (every
// outbound call is refused until a reload, on every replica alike: the
// answer stays 200 and webhooks keep flowing); the reload with good
// credentials brings it back.
func TestHealthCredentialsFuse(t *testing.T) {
	setFakeEnv(t)
	t.Setenv("QG_TEST_WRONG_SECRET", "sk_test_FAKEwrongFAKEwrongFAKEwrong00000")
	fake := fakemodulus.New(t, fakemodulus.Options{SecretKey: fakeSandboxKey, EncryptionKey: []byte(fakeEncryptionKey)})
	bad := sandboxAPI(fake.URL)
	bad.SecretKey = "{env.QG_TEST_WRONG_SECRET}"
	if err := bad.Provision(testContext(t)); err != nil {
		t.Fatal(err)
	}
	h, _ := newHealth(t, &Health{})
	if _, rep := probe(t, h); checkWith(t, rep, "credentials:").Status != health.OK {
		t.Fatalf("before any call: %+v", rep)
	}
	for i := 0; i < 3; i++ {
		if w := createVia(bad, "FUSE-1"); w.Code != http.StatusUnauthorized {
			t.Fatalf("call %d with a wrong key: %d %s", i+1, w.Code, w.Body)
		}
	}
	code, rep := probe(t, h)
	if c := checkWith(t, rep, "credentials:"); code != http.StatusOK || rep.Status != health.Degraded || c.Status != health.Degraded || !strings.Contains(c.Message, "reloaded") {
		t.Fatalf("fuse blown: %d %+v", code, rep)
	}
	// The reload: the new handler with good credentials replaces the old.
	good := sandboxAPI(fake.URL)
	if err := good.Provision(testContext(t)); err != nil {
		t.Fatal(err)
	}
	defer good.Cleanup()
	_ = bad.Cleanup()
	if code, rep := probe(t, h); code != 200 || checkWith(t, rep, "credentials:").Status != health.OK {
		t.Fatalf("after the reload: %d %+v", code, rep)
	}
}

// An open breaker is degraded (200: the replica serves, the provider is
// failing); once it closes again the check is ok.
func TestHealthBreaker(t *testing.T) {
	setFakeEnv(t)
	fake := fakemodulus.New(t, fakemodulus.Options{SecretKey: fakeSandboxKey, EncryptionKey: []byte(fakeEncryptionKey)})
	a := sandboxAPI(fake.URL)
	a.CircuitBreaker = &BreakerConfig{Failures: 1, Open: caddy.Duration(500 * time.Millisecond)}
	if err := a.Provision(testContext(t)); err != nil {
		t.Fatal(err)
	}
	defer a.Cleanup()
	h, _ := newHealth(t, &Health{})
	fake.Fail(fakemodulus.Fault{Path: "/v1/pay/qr", Status: 500})
	if w := createVia(a, "BRK-1"); w.Code != http.StatusBadGateway {
		t.Fatalf("create against a 500: %d %s", w.Code, w.Body)
	}
	code, rep := probe(t, h)
	if c := checkWith(t, rep, "breaker:", ":qr"); code != 200 || rep.Status != health.Degraded || c.Status != health.Degraded || !strings.HasPrefix(c.Message, "open") {
		t.Fatalf("breaker open: %d %+v", code, rep)
	}
	// After `open` it admits a probe call; its success closes it.
	e2e.WaitFor(t, 10*time.Second, "a call to get through the breaker", func() bool { return createVia(a, "BRK-2").Code == 200 })
	// (The background ping may have met the open breaker: that check is
	// degraded until its next run, on the test's clock.)
	if code, rep := probe(t, h); code != 200 || checkWith(t, rep, "breaker:", ":qr").Status != health.OK {
		t.Fatalf("breaker closed again: %d %+v", code, rep)
	}
}

// The provider's /ping is called in the background at health_interval on
// both APIs, never per probe: a failing ping is degraded and
// qrphgate_upstream_up 0 until the next ping answers.
func TestHealthUpstreamPing(t *testing.T) {
	setFakeEnv(t)
	fake := fakemodulus.New(t, fakemodulus.Options{SecretKey: fakeSandboxKey, EncryptionKey: []byte(fakeEncryptionKey)})
	a := sandboxAPI(fake.URL)
	if err := a.Provision(testContext(t)); err != nil {
		t.Fatal(err)
	}
	defer a.Cleanup()
	h, clk := newHealth(t, &Health{HealthInterval: caddy.Duration(time.Minute)})
	waitCheck(t, h, clk, 0, "upstream:qr:", health.OK)
	rep := waitCheck(t, h, clk, 0, "upstream:webhooks:", health.OK)
	pings := len(fake.CallsTo("/ping"))
	for i := 0; i < 20; i++ {
		probe(t, h)
	}
	if n := len(fake.CallsTo("/ping")); n != pings || n != 2 {
		t.Fatalf("%d pings after 20 probes (%d before): want one per API", n, pings)
	}
	if metricValue(t, `qrphgate_upstream_up{api="qr"}`) != 1 || metricValue(t, `qrphgate_upstream_ping_seconds{api="qr"}`) < 0 {
		t.Fatalf("metrics while up: %+v", rep)
	}
	fake.Fail(fakemodulus.Fault{Path: "/ping", Status: 503}, fakemodulus.Fault{Path: "/ping", Status: 503})
	rep = waitCheck(t, h, clk, time.Minute, "upstream:qr:", health.Degraded)
	if code, _ := probe(t, h); code != 200 || !strings.Contains(checkWith(t, rep, "upstream:qr:").Message, "HTTP 503") {
		t.Fatalf("provider down: %d %+v", code, rep)
	}
	e2e.WaitFor(t, 10*time.Second, "qrphgate_upstream_up 0", func() bool { return metricValue(t, `qrphgate_upstream_up{api="qr"}`) == 0 })
	waitCheck(t, h, clk, time.Minute, "upstream:qr:", health.OK)
	e2e.WaitFor(t, 10*time.Second, "qrphgate_upstream_up 1", func() bool { return metricValue(t, `qrphgate_upstream_up{api="qr"}`) == 1 })
}

// certStore stands in for Caddy's certificate cache.
type certStore struct {
	mu    sync.Mutex
	certs map[string][]*x509.Certificate
}

func (s *certStore) set(name string, notAfter time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if notAfter.IsZero() {
		delete(s.certs, name)
		return
	}
	s.certs[name] = []*x509.Certificate{{NotBefore: notAfter.Add(-90 * 24 * time.Hour), NotAfter: notAfter}}
}

func (s *certStore) lookup(name string) []*x509.Certificate {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.certs[name]
}

// The certificate: valid beyond cert_warn is ok, within it degraded,
// expired unavailable, missing degraded (not obtained yet, or served by
// something else), and back to ok once renewed; its expiry series exists
// only while a handler checks the name.
func TestHealthCertificate(t *testing.T) {
	certs := &certStore{certs: map[string][]*x509.Certificate{}}
	h := &Health{CertNames: []string{"pay.example.com"}, CertWarn: caddy.Duration(14 * 24 * time.Hour), lookup: certs.lookup}
	h, clk := newHealth(t, h)
	now := clk.Now()
	series := certSeries("pay.example.com")
	for _, tc := range []struct {
		notAfter time.Time
		want     health.Status
		code     int
	}{
		{now.Add(60 * 24 * time.Hour), health.OK, 200},
		{now.Add(7 * 24 * time.Hour), health.Degraded, 200},
		{now.Add(-time.Hour), health.Unavailable, 503},
		{time.Time{}, health.Degraded, 200},
		{now.Add(90 * 24 * time.Hour), health.OK, 200}, // renewed
	} {
		certs.set("pay.example.com", tc.notAfter)
		code, rep := probe(t, h)
		if c := rep.Checks["certificate:pay.example.com"]; code != tc.code || c.Status != tc.want {
			t.Fatalf("certificate until %v: %d %+v", tc.notAfter, code, c)
		}
		got := metricValue(t, series)
		if want := time.Until(tc.notAfter).Seconds(); (tc.notAfter.IsZero() && got != 0) || (!tc.notAfter.IsZero() && math.Abs(got-want) > 60) {
			t.Fatalf("%s = %v, want about %v", series, got, want)
		}
	}
	_ = h.Cleanup()
	if v := metricValue(t, series); v != -1 {
		t.Fatalf("the expiry series outlived its handler: %v", v)
	}
}

func TestHealthCaddyfileErrors(t *testing.T) {
	for _, tc := range []struct{ name, src, want string }{
		{"unknown option", "http://127.0.0.1:9180 {\n\tmodulus_health {\n\t\tinterval 5s\n\t}\n}\n", `modulus_health: unknown option "interval", at Caddyfile:3`},
		{"argument", "http://127.0.0.1:9180 {\n\tmodulus_health /readyz extra\n}\n", "modulus_health takes no arguments, only a block of options, at Caddyfile:2"},
		{"twice", "http://127.0.0.1:9180 {\n\tmodulus_health {\n\t\tcert_warn 1d\n\t\tcert_warn 2d\n\t}\n}\n", `modulus_health: option "cert_warn" given twice, at Caddyfile:4`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if msg := adaptErr(t, tc.src); !strings.Contains(msg, tc.want) {
				t.Fatalf("error %q lacks %q", msg, tc.want)
			}
		})
	}
}
