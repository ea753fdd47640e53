package caddymodule

import (
	"bytes"
	"context"
	"encoding/base64"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/qrphgate/qrphgate/internal/clock"
	"github.com/qrphgate/qrphgate/internal/redistest"
	"github.com/qrphgate/qrphgate/preflight"
	"github.com/qrphgate/qrphgate/store"
)

// Obviously fake credentials for the preflight tests; the testdata configs
// read them from the environment (testdata/preflight/README.md).
var preflightEnv = map[string]string{
	"PF_LIVE_SECRET_KEY": "sk_live_FAKE-preflight-key-000000",
	"PF_TEST_SECRET_KEY": "sk_test_FAKE-preflight-key-000000",
	"PF_ENCRYPTION_KEY":  "TEST-ONLY-fake-key-do-not-use-32",
	"PF_SHORT_KEY":       "TEST-ONLY-fake-short-key",
	"PF_SIGN_SECRET":     "whsec_VEVTVC1PTkxZLWZha2Utc2lnbmluZy1zZWNyZXQtMzI=",
	"PF_ACTIVATION_CODE": "TEST-0000-0000-0001",
}

// preflightSecrets are the secret values no report may contain.
func preflightSecrets() []string {
	return []string{preflightEnv["PF_LIVE_SECRET_KEY"], preflightEnv["PF_TEST_SECRET_KEY"], preflightEnv["PF_ENCRYPTION_KEY"],
		preflightEnv["PF_SHORT_KEY"], preflightEnv["PF_SIGN_SECRET"], "sk_test_FAKE-simulator-key-0000000"}
}

// assertNoSecrets fails when out holds a secret, plain or base64.
func assertNoSecrets(t *testing.T, out string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		for _, form := range []string{s, base64.StdEncoding.EncodeToString([]byte(s)), base64.StdEncoding.EncodeToString([]byte(s + ":"))} {
			if strings.Contains(out, form) {
				t.Errorf("the report contains a secret (%.12s...):\n%s", s, out)
			}
		}
	}
}

// setPreflightEnv sets the fake credentials, a spool under dir and Caddy's
// data directory in dir.
func setPreflightEnv(t *testing.T, dir string) {
	t.Helper()
	for k, v := range preflightEnv {
		t.Setenv(k, v)
	}
	t.Setenv("PF_SPOOL", filepath.Join(dir, "spool", "webhooks.spool"))
	t.Setenv("XDG_DATA_HOME", filepath.Join(dir, "data"))
}

// fixedMachine is a machine whose clock is synchronised and stands still.
func fixedMachine(o preflightOptions) preflightOptions {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	o.Clock = clock.NewFake(now)
	o.Now = func() time.Time { return now }
	o.SystemClock = func() preflight.ClockState {
		return preflight.ClockState{Known: true, Synchronised: true, Detail: "test machine"}
	}
	return o
}

// TestPreflightJSONGolden: the JSON report of the production example is
// stable (go test ./caddymodule -run TestPreflightJSONGolden -update
// rewrites it; review the diff, and bump preflight.Schema when a field
// changes meaning).
func TestPreflightJSONGolden(t *testing.T) {
	dir := t.TempDir()
	setPreflightEnv(t, dir)
	config := filepath.Join("testdata", "preflight", "production.caddyfile")
	r := runPreflight(context.Background(), fixedMachine(preflightOptions{Config: config}))
	var b bytes.Buffer
	if err := r.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	got := strings.ReplaceAll(b.String(), dir, "$TMP")
	assertNoSecrets(t, got, preflightSecrets()...)
	golden := filepath.Join("testdata", "preflight", "production.golden.json")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("the JSON report changed (rerun with -update and review the diff):\n%s", got)
	}
	if !r.Passed || r.Summary.Fail != 0 {
		t.Errorf("the production example fails: %+v", r.Summary)
	}
}

// The offline checks neither open the spool, the ledger file nor bind the
// sites' ports: a spool and a ledger another process holds (bbolt locks
// them) and a port in use do not get in the way, and the spool file is
// left as it was.
func TestPreflightOpensNothing(t *testing.T) {
	ledgerPath := filepath.Join(t.TempDir(), "ledger.db")
	config := productionVariant(t, "	admin localhost:2999\n", "	admin localhost:2999\n	modulus {\n		ledger file://"+ledgerPath+"\n	}\n")
	spool := filepath.Join(filepath.Dir(config), "spool", "webhooks.spool")
	heldSpool, err := store.OpenBolt(spool, store.BoltOptions{}) // holds the file's lock, as a running gateway does
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = heldSpool.Close() })
	held, err := store.OpenFileLedger(ledgerPath, 0, nil) // so does a running gateway
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = held.Close() })
	// The modulus_api site's port, taken (by this test or by whatever
	// else holds it).
	if l, err := net.Listen("tcp", "127.0.0.1:2090"); err == nil {
		defer l.Close()
	}
	before, err := os.Stat(spool)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r := runPreflight(context.Background(), fixedMachine(preflightOptions{Config: config}))
	if !r.Passed {
		var b bytes.Buffer
		_ = r.WriteText(&b)
		t.Fatalf("preflight failed with the spool and the ledger held:\n%s", b.String())
	}
	if c := r.Find("ledger.store"); len(c) != 1 || c[0].Status != preflight.OK || !strings.Contains(c[0].Reason, "ledger directory") {
		t.Errorf("ledger.store: %+v", c)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("preflight took %v: did it wait for a lock?", d)
	}
	after, _ := os.Stat(spool)
	if !after.ModTime().Equal(before.ModTime()) || after.Size() != before.Size() {
		t.Error("preflight changed the spool file")
	}
}

// What provisioning decides about a site's TLS reaches the checks, and
// the sites are told apart by their host and path matchers.
func TestPreflightSites(t *testing.T) {
	dir := t.TempDir()
	setPreflightEnv(t, dir)
	config := filepath.Join(dir, "Caddyfile")
	src := `{
	admin off
}
http://127.0.0.1:2090 {
	modulus_api {
		environment sandbox
		secret_key {env.PF_TEST_SECRET_KEY}
		encryption_key {env.PF_ENCRYPTION_KEY}
		activation_code TEST-0000-0000-0001
	}
}
https://localhost:8443 {
	tls internal
	handle /hooks/* {
		modulus_webhook {
			decryption_key {env.PF_ENCRYPTION_KEY}
			allow_ips any
			forward_to http://127.0.0.1:3000/
			spool {env.PF_SPOOL}
		}
	}
}
http://hooks.test:8080 {
	route /webhooks/modulus {
		modulus_webhook {
			decryption_key {env.PF_ENCRYPTION_KEY}
			allow_ips any
			forward_to http://127.0.0.1:3000/
			spool {env.PF_SPOOL}
		}
	}
}
`
	if err := os.WriteFile(config, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	c := provisionedConfig(t, config)
	hooks := c.of(handlerWebhook)
	if len(hooks) != 2 || len(c.of(handlerAPI)) != 1 || !c.adminOff {
		t.Fatalf("found %d webhooks, %d apis, admin off %v", len(hooks), len(c.of(handlerAPI)), c.adminOff)
	}
	tlsSite, plainSite := hooks[0].site(), hooks[1].site()
	if tlsSite.scheme == "http" {
		tlsSite, plainSite = plainSite, tlsSite
	}
	if tlsSite.String() != "https://localhost:8443" || tlsSite.path != "" {
		t.Errorf("tls site: %+v", tlsSite)
	}
	if _, err := tlsSite.publicURL(); err == nil {
		t.Error("a path pattern gave a public URL")
	}
	if plainSite.String() != "http://hooks.test:8080/webhooks/modulus" {
		t.Errorf("plain site: %+v", plainSite)
	}
	if u, err := plainSite.publicURL(); err != nil || u != "http://hooks.test:8080/webhooks/modulus" {
		t.Errorf("public URL %q %v", u, err)
	}
	if api := c.of(handlerAPI)[0].site(); api.baseURL() != "http://127.0.0.1:2090" {
		t.Errorf("api base %q", api.baseURL())
	}

	// In a sandbox config, the production-only rules warn.
	r := runPreflight(context.Background(), fixedMachine(preflightOptions{Config: config}))
	for _, id := range []string{"webhook.allow_ips", "webhook.sign_secret", "webhook.tls", "admin.listen"} {
		for _, ch := range r.Find(id) {
			if ch.Status == preflight.Fail {
				t.Errorf("%s fails in the sandbox: %+v", id, ch)
			}
		}
	}
	for _, ch := range r.Find("webhook.tls") {
		want := map[string]preflight.Status{"modulus_webhook https://localhost:8443": preflight.OK,
			"modulus_webhook http://hooks.test:8080/webhooks/modulus": preflight.Warn}[ch.Subject]
		if ch.Status != want {
			t.Errorf("webhook.tls: %+v", ch)
		}
	}
	if n := len(r.Find("webhook.tls")); n != 2 {
		t.Errorf("%d webhook.tls lines", n)
	}
}

// A site on the https_port the config moved (a container mapping 443 to
// 8443) is public on 443; the gateway's own address keeps its port.
func TestPreflightSitePublicPort(t *testing.T) {
	config := productionVariant(t, "	admin localhost:2999\n", "	admin localhost:2999\n	http_port 8080\n	https_port 8443\n")
	c := provisionedConfig(t, config)
	hook, api := c.of(handlerWebhook)[0].site(), c.of(handlerAPI)[0].site()
	if u, err := hook.publicURL(); err != nil || u != "https://pay.example.com/webhooks/modulus" || hook.port != "8443" {
		t.Errorf("webhook site %+v: public URL %q %v", hook, u, err)
	}
	if api.baseURL() != "http://127.0.0.1:2090" {
		t.Errorf("api base %q", api.baseURL())
	}
}

// productionVariant writes testdata/preflight/production.caddyfile with
// one change to a fresh directory, sets the environment it reads, and
// returns the file's path.
func productionVariant(t *testing.T, old, new string) string {
	t.Helper()
	dir := t.TempDir()
	setPreflightEnv(t, dir)
	src, err := os.ReadFile(filepath.Join("testdata", "preflight", "production.caddyfile"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(src), old) {
		t.Fatalf("production.caddyfile lacks %q", old)
	}
	config := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(config, []byte(strings.Replace(string(src), old, new, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	return config
}

// provisionedConfig loads and provisions a Caddyfile as preflight does.
func provisionedConfig(t *testing.T, path string) *pfConfig {
	t.Helper()
	c, err := loadPreflightConfig(path, "")
	if err != nil {
		t.Fatal(err)
	}
	c.provision()
	if c.provisionErr != nil {
		t.Fatal(c.provisionErr)
	}
	return c
}

func TestIsPublicName(t *testing.T) {
	for host, public := range map[string]bool{
		"pay.example.com": true, "": true, "203.0.113.7": true,
		"localhost": false, "app.localhost": false, "127.0.0.1": false, "10.1.2.3": false, "::1": false,
		"hooks.test": false, "gw.internal": false, "printer.local": false,
	} {
		if got := isPublicName(host); got != public {
			t.Errorf("isPublicName(%q) = %v", host, got)
		}
	}
}

// A Redis spool's server is opened through the handlers' opener and
// judged on its persistence; one that refuses CONFIG gets a warning that
// says so.
func TestPreflightRedisPersistence(t *testing.T) {
	durable := redistest.Start(t, redistest.Options{AppendOnly: true})
	volatile := redistest.Start(t, redistest.Options{})
	managed := redistest.Start(t, redistest.Options{AppendOnly: true, Args: []string{"--rename-command", "CONFIG", ""}})
	for _, tc := range []struct {
		name, url string
		want      preflight.Status
		has       string
	}{
		{"durable", durable.URL(), preflight.OK, "appendonly yes, appendfsync always"},
		{"volatile", volatile.URL(), preflight.Warn, "a Redis restart loses every webhook"},
		{"managed", managed.URL(), preflight.Warn, "unknown command"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			config := productionVariant(t, "spool {env.PF_SPOOL}", "spool "+tc.url)
			r := runPreflight(context.Background(), fixedMachine(preflightOptions{Config: config}))
			reach, pers := r.Find("redis.reachable"), r.Find("redis.persistence")
			if len(reach) != 1 || reach[0].Status != preflight.OK || reach[0].ElapsedMS == nil {
				t.Fatalf("redis.reachable: %+v", reach)
			}
			if len(pers) != 1 || pers[0].Status != tc.want || !strings.Contains(pers[0].Reason, tc.has) ||
				!strings.Contains(pers[0].Subject, "spool of modulus_webhook https://pay.example.com/webhooks/modulus") {
				t.Fatalf("redis.persistence: %+v", pers)
			}
		})
	}
}
