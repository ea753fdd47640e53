package policy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDefaultPolicy(t *testing.T) {
	p := Default()
	sb, err := p.Environment(Sandbox)
	if err != nil {
		t.Fatal(err)
	}
	if sb.QRURL != "https://qrph.sbx.moduluslabs.io" || sb.WebhooksURL != "https://webhooks.sbx.moduluslabs.io" {
		t.Fatalf("sandbox hosts: %+v", sb)
	}
	if sb.RateLimit != (RateLimit{100, time.Minute}) {
		t.Fatalf("sandbox rate limit %v", sb.RateLimit)
	}
	prod, _ := p.Environment(Production)
	if prod.QRURL != "https://qrph.moduluslabs.io" || prod.RateLimit != (RateLimit{1000, time.Minute}) {
		t.Fatalf("production profile: %+v", prod)
	}
	if prod.WebhooksURL != "" {
		t.Fatal("the production webhooks host is not published: it must not be guessed")
	}
	if time.Duration(p.QR.Validity) != 15*time.Minute {
		t.Fatalf("qr validity %v", time.Duration(p.QR.Validity))
	}
	if p.QR.Amount.Min != 100 || p.QR.Amount.Max != 9999999 {
		t.Fatalf("amount range %+v", p.QR.Amount)
	}
	if !sb.AllowsCurrency("PHP") || sb.AllowsCurrency("USD") {
		t.Fatalf("sandbox currencies %v", sb.Currencies)
	}
	if _, err := p.Environment("staging"); err == nil {
		t.Fatal("unknown environment accepted")
	}
}

func TestOverrideReplacesOnlyWhatItNames(t *testing.T) {
	p, err := Parse([]byte(`
environments:
  sandbox:
    currencies: [PHP, USD, SGD]
  production:
    webhooks_url: https://webhooks.moduluslabs.io
qr:
  validity: 10m
`))
	if err != nil {
		t.Fatal(err)
	}
	sb, _ := p.Environment(Sandbox)
	if !sb.AllowsCurrency("USD") || sb.QRURL != "https://qrph.sbx.moduluslabs.io" || sb.RateLimit.Requests != 100 {
		t.Fatalf("sandbox after override: %+v", sb)
	}
	prod, _ := p.Environment(Production)
	if prod.WebhooksURL != "https://webhooks.moduluslabs.io" || prod.RateLimit.Requests != 1000 {
		t.Fatalf("production after override: %+v", prod)
	}
	if time.Duration(p.QR.Validity) != 10*time.Minute || p.QR.Amount.Max != 9999999 {
		t.Fatalf("qr after override: %+v", p.QR)
	}
	// The default itself is untouched by an override.
	if Default().Environments.Sandbox.AllowsCurrency("USD") {
		t.Fatal("override leaked into the default policy")
	}
}

func TestOverrideRejections(t *testing.T) {
	tests := []struct{ name, doc, want string }{
		{"unknown top-level key", "ratelimits: {}", "field ratelimits not found"},
		{"unknown nested key", "environments:\n  sandbox:\n    qr_host: x", "field qr_host not found"},
		{"unknown environment", "environments:\n  staging: {}", "field staging not found"},
		{"bad rate limit", "environments:\n  sandbox:\n    rate_limit: lots", "want N/duration"},
		{"zero rate limit", "environments:\n  sandbox:\n    rate_limit: 0/1m", "positive integer"},
		{"http upstream", "environments:\n  sandbox:\n    qr_url: http://qrph.example.com", "must use https"},
		{"loopback http allowed but ftp not", "environments:\n  sandbox:\n    qr_url: ftp://127.0.0.1", "must use https"},
		{"bad currency", "environments:\n  sandbox:\n    currencies: [php]", "not an ISO 4217"},
		{"empty currencies", "environments:\n  sandbox:\n    currencies: []", "must not be empty"},
		{"amount as number", "qr:\n  amount:\n    min: 1.00", "quoted strings"},
		{"amount min above max", "qr:\n  amount:\n    min: \"500.00\"\n    max: \"100.00\"", "min <= max"},
		{"unanchored pattern", "qr:\n  reference_pattern: \"[a-z]+\"", "anchored"},
		{"invalid pattern", "qr:\n  reference_pattern: \"^([a-z]$\"", "reference_pattern"},
		{"bad validity", "qr:\n  validity: soon", "line 2"},
		{"negative validity", "qr:\n  validity: -1m", "validity must be positive"},
		{"two documents", "qr:\n  validity: 1m\n---\nqr:\n  validity: 2m", "single YAML document"},
		{"not a mapping", "- a\n- b", "cannot unmarshal"},
		{"bad key prefix", "environments:\n  sandbox:\n    secret_key_prefix: pk_", "must start with sk_"},
		{"empty action list", "webhooks:\n  actions: []", "webhooks.actions"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.doc))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	if p, err := Load(""); err != nil || p.QR.Amount.Min != 100 {
		t.Fatalf("Load(\"\") = %v", err)
	}
	path := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(path, []byte("qr:\n  validity: 5m\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := Load(path)
	if err != nil || time.Duration(p.QR.Validity) != 5*time.Minute {
		t.Fatalf("Load = %v", err)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml")); err == nil || !strings.Contains(err.Error(), "loading policy") {
		t.Fatalf("missing file: %v", err)
	}
	if err := os.WriteFile(path, []byte("qr:\n  bogus: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("bad file error should name the file: %v", err)
	}
	if len(DefaultYAML()) == 0 {
		t.Fatal("DefaultYAML is empty")
	}
}

func TestParseRateLimit(t *testing.T) {
	tests := []struct {
		in   string
		want RateLimit
		str  string
	}{
		{"100/1m", RateLimit{100, time.Minute}, "100/1m"},
		{"1000/60s", RateLimit{1000, time.Minute}, "1000/1m"},
		{"5/s", RateLimit{5, time.Second}, "5/1s"},
		{"100/min", RateLimit{100, time.Minute}, "100/1m"},
		{"10/10m", RateLimit{10, 10 * time.Minute}, "10/10m"},
		{"3600/1h", RateLimit{3600, time.Hour}, "3600/1h"},
		{"2/1500ms", RateLimit{2, 1500 * time.Millisecond}, "2/1.5s"},
	}
	for _, tc := range tests {
		got, err := ParseRateLimit(tc.in)
		if err != nil || got != tc.want || got.String() != tc.str {
			t.Errorf("ParseRateLimit(%q) = %v (%q), %v", tc.in, got, got.String(), err)
		}
		if back, err := ParseRateLimit(got.String()); err != nil || back != got {
			t.Errorf("String() of %q does not parse back: %v", tc.in, err)
		}
	}
	for _, bad := range []string{"", "100", "/1m", "a/1m", "-1/1m", "0/1m", "100/0s", "100/-1m", "100/fortnight"} {
		if _, err := ParseRateLimit(bad); err == nil {
			t.Errorf("ParseRateLimit(%q) accepted", bad)
		}
	}
}
