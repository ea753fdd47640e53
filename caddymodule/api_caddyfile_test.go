package caddymodule

import (
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func apiSite(opts string) string {
	return "http://127.0.0.1:2090 {\n\tmodulus_api {\n" + opts + "\t}\n}\n"
}

// Parsing errors point at the file and line and say what is wrong.
func TestAPICaddyfileErrors(t *testing.T) {
	tests := []struct{ name, opts, want string }{
		{"unknown option", "\t\tenvironment sandbox\n\t\tsecret sk_test_x\n", `Caddyfile:4: modulus_api: unknown option "secret"`},
		{"duplicate option", "\t\tenvironment sandbox\n\t\tenvironment production\n", `Caddyfile:4: modulus_api: option "environment" given twice`},
		{"bad environment", "\t\tenvironment staging\n", "Caddyfile:3: environment must be sandbox or production"},
		{"missing value", "\t\tsecret_key\n", "Caddyfile:3: modulus_api: secret_key takes exactly one value"},
		{"two values", "\t\tsecret_key a b\n", "Caddyfile:3: modulus_api: secret_key takes exactly one value"},
		{"bad key encoding", "\t\tkey_encoding base32\n", "Caddyfile:3: key_encoding: unknown key encoding"},
		{"http qr_url off loopback", "\t\tqr_url http://qrph.example.com\n", "Caddyfile:3: qr_url must use https"},
		{"qr_url with credentials", "\t\tqr_url https://u:p@qrph.example.com\n", "Caddyfile:3: qr_url must not carry credentials"},
		{"bad webhooks_payload", "\t\twebhooks_payload token\n", "Caddyfile:3: webhooks_payload must be plain or jwe"},
		{"bad rate limit", "\t\trate_limit 100\n", "Caddyfile:3: rate_limit: rate limit \"100\": want N/duration"},
		{"negative max_wait", "\t\tmax_wait -1s\n", "Caddyfile:3: max_wait must be zero or a positive duration"},
		{"zero timeout", "\t\ttimeout 0s\n", "Caddyfile:3: timeout must be a positive duration"},
		{"retries not a number", "\t\tretries many\n", "Caddyfile:3: retries must be a whole number from 0 to 10"},
		{"too many retries", "\t\tretries 11\n", "Caddyfile:3: retries must be a whole number from 0 to 10"},
		{"max_queue zero", "\t\tmax_queue 0\n", "Caddyfile:3: max_queue must be a whole number"},
		{"auth_failures zero", "\t\tauth_failures 0\n", "Caddyfile:3: auth_failures must be a whole number from 1"},
		{"no merchants", "\t\tmerchants\n", "Caddyfile:3: modulus_api: merchants needs at least one value"},
		{"breaker without settings", "\t\tcircuit_breaker\n", "Caddyfile:3: circuit_breaker needs settings"},
		{"breaker odd pairs", "\t\tcircuit_breaker failures 5 window\n", "Caddyfile:3: circuit_breaker takes setting-value pairs"},
		{"breaker unknown setting", "\t\tcircuit_breaker failures 5 half_open 2\n", `Caddyfile:3: unknown circuit_breaker setting "half_open"`},
		{"breaker duplicate setting", "\t\tcircuit_breaker failures 5 failures 6\n", `Caddyfile:3: circuit_breaker setting "failures" given twice`},
		{"breaker bad duration", "\t\tcircuit_breaker {\n\t\t\topen soon\n\t\t}\n", "Caddyfile:4: circuit_breaker open must be a positive duration"},
		{"breaker zero probes", "\t\tcircuit_breaker probes 0\n", "Caddyfile:3: circuit_breaker probes must be a whole number"},
		{"bad store", "\t\tstore postgres://localhost/x\n", "Caddyfile:3: store must be memory, file:///absolute/path, redis://host:port/db, redis-cluster://"},
		{"cluster without a port", "\t\tstore redis-cluster://10.0.0.1:6379,10.0.0.2\n", "Caddyfile:3: store: each Redis address must be host:port"},
		{"cluster with a database", "\t\tstore redis-cluster://10.0.0.1:6379/1\n", "Caddyfile:3: store: a Redis Cluster URL takes no path"},
		{"sentinel without a master", "\t\tstore redis-sentinel://10.0.0.1:26379\n", "Caddyfile:3: store: a Redis Sentinel URL names the primary"},
		{"unknown redis option", "\t\tstore redis-sentinel://10.0.0.1:26379/m?tls=true&pool=9\n", `Caddyfile:3: store: unknown Redis URL option "pool"`},
		{"relative file store", "\t\tstore file://state/outbound.db\n", "Caddyfile:3: store: file:// takes an absolute file path"},
		{"file store without a path", "\t\tstore file://\n", "Caddyfile:3: store: file:// takes an absolute file path"},
		{"bad redis db", "\t\tstore redis://127.0.0.1:6379/x\n", "Caddyfile:3: store: the Redis database in the URL path must be a number"},
		{"option with a block", "\t\tretries 2 {\n\t\t\tx\n\t\t}\n", "Caddyfile:4: retries takes no block"},
		{"inline secret in production", "\t\tenvironment production\n\t\tsecret_key sk_live_FAKE-inline\n", "Caddyfile:4: modulus_api: secret_key must be a {env.NAME} or {file.PATH} placeholder"},
		{"inline secret in the sandbox", "\t\tenvironment sandbox\n\t\tsecret_key sk_test_FAKE-inline\n", "Caddyfile:4: modulus_api: secret_key must be a {env.NAME} or {file.PATH} placeholder"},
		{"{$VAR} secret", "\t\tencryption_key {$HOME}\n", "Caddyfile:3: modulus_api: encryption_key must be a {env.NAME} or {file.PATH} placeholder"},
		{"inline activation code before environment", "\t\tactivation_code TEST-0000-0000-0001\n\t\tenvironment production\n", "Caddyfile:3: modulus_api: with environment production, activation_code must be"},
		{"inline activation code in production", "\t\tenvironment production\n\t\tactivation_code TEST-0000-0000-0001\n", "Caddyfile:4: modulus_api: with environment production, activation_code must be"},
		{"one inline merchant in production", "\t\tenvironment production\n\t\tmerchants {env.M1} TEST-0000-0000-0002\n", "Caddyfile:4: modulus_api: with environment production, merchants[2] must be"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			where, what, _ := strings.Cut(tc.want, ": ")
			msg := adaptErr(t, apiSite(tc.opts))
			if !strings.Contains(msg, what) || !strings.HasSuffix(msg, ", at "+where) {
				t.Fatalf("error %q\nwant %q at %s", msg, what, where)
			}
		})
	}
	// The sandbox takes inline (obviously fake) secrets; production takes
	// placeholders; neither error message repeats a value.
	for _, opts := range []string{
		"\t\tenvironment sandbox\n\t\tsecret_key {env.K}\n\t\tactivation_code TEST-0000-0000-0001\n",
		"\t\tenvironment production\n\t\tsecret_key {env.K}\n\t\tencryption_key {file./run/k}\n\t\tmerchants {env.M1} {env.M2}\n",
	} {
		if _, err := adapt(t, "Caddyfile", apiSite(opts)); err != nil {
			t.Fatalf("%q: %v", opts, err)
		}
	}
	if msg := adaptErr(t, apiSite("\t\tenvironment production\n\t\tsecret_key sk_live_FAKE-inline\n")); strings.Contains(msg, "FAKE-inline") {
		t.Fatalf("the error repeats the secret: %q", msg)
	}
	if msg := adaptErr(t, "http://127.0.0.1:2090 {\n\tmodulus_api sandbox\n}\n"); !strings.Contains(msg, "modulus_api takes no arguments, only a block of options, at Caddyfile:2") {
		t.Fatalf("argument: %q", msg)
	}
}

// The breaker's two syntaxes adapt to the same JSON.
func TestAPICaddyfileBreakerForms(t *testing.T) {
	one, err := adapt(t, "a", apiSite("\t\tcircuit_breaker failures 3 window 1m open 10s probes 2\n"))
	if err != nil {
		t.Fatal(err)
	}
	block, err := adapt(t, "b", apiSite("\t\tcircuit_breaker {\n\t\t\tfailures 3\n\t\t\twindow 1m\n\t\t\topen 10s\n\t\t\tprobes 2\n\t\t}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if string(one) != string(block) || !strings.Contains(string(one), `"circuit_breaker":{"failures":3,"open":10000000000,"probes":2,"window":60000000000}`) {
		t.Fatalf("forms differ:\n%s\n%s", one, block)
	}
}

// The breaker's parser only turns text into values; the ranges are the
// circuit_breaker rule's alone (BreakerConfig.check), which the parser's
// caller and Provision both apply.
func TestAPICaddyfileBreakerParserOnlyParses(t *testing.T) {
	d := caddyfile.NewTestDispenser("circuit_breaker failures 1001 window -1s open -2s probes 5000")
	d.Next()
	b, err := parseBreaker(d)
	if err != nil {
		t.Fatalf("the parser judged a range: %v", err)
	}
	if *b != (BreakerConfig{Failures: 1001, Window: caddy.Duration(-time.Second), Open: caddy.Duration(-2 * time.Second), Probes: 5000}) {
		t.Fatalf("parsed %+v", *b)
	}
	for _, tc := range []struct {
		b    BreakerConfig
		want string
	}{
		{BreakerConfig{Failures: 1001}, "circuit_breaker failures must be a whole number from 1 to 1000"},
		{BreakerConfig{Failures: -1}, "circuit_breaker failures must be a whole number from 1 to 1000"},
		{BreakerConfig{Window: -1}, "circuit_breaker window must be a positive duration"},
		{BreakerConfig{Open: -1}, "circuit_breaker open must be a positive duration"},
		{BreakerConfig{Probes: 1001}, "circuit_breaker probes must be a whole number from 1 to 1000"},
	} {
		if err := tc.b.check(); err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.b, err, tc.want)
		}
	}
	if err := (&BreakerConfig{Failures: 1000, Window: 1, Open: 1, Probes: 1}).check(); err != nil {
		t.Errorf("the largest and smallest settings: %v", err)
	}
}
