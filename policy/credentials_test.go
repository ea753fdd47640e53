package policy

import (
	"strings"
	"testing"
)

func TestCheckSecretKey(t *testing.T) {
	p := Default()
	sb, _ := p.Environment(Sandbox)
	prod, _ := p.Environment(Production)
	const (
		testKey = "sk_test_FAKEFAKEFAKEFAKEFAKE0000000000"
		liveKey = "sk_live_FAKEFAKEFAKEFAKEFAKE0000000000"
		bareKey = "sk_FAKEFAKEFAKEFAKEFAKE0000000000000"
	)
	tests := []struct {
		name    string
		env     Environment
		key     string
		wantErr string
		warn    bool
	}{
		{"test key in sandbox", sb, testKey, "", false},
		{"live key in production", prod, liveKey, "", false},
		{"live key in sandbox", sb, liveKey, "is a production key", false},
		{"test key in production", prod, testKey, "is a sandbox key", false},
		{"bare sk_ key warns", sb, bareKey, "", true},
		{"bare sk_ key warns in production", prod, bareKey, "", true},
		{"empty", sb, "", "is empty", false},
		{"no sk_ prefix", sb, "pk_test_FAKE0000", "must start with sk_", false},
		{"trailing newline", sb, testKey + "\n", "whitespace", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			warn, err := p.CheckSecretKey(tc.env, tc.key)
			if tc.wantErr == "" && err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
			if (warn != "") != tc.warn {
				t.Fatalf("warning = %q, want warning: %v", warn, tc.warn)
			}
			for _, s := range []string{warn, errString(err)} {
				if len(tc.key) > 8 && strings.Contains(s, tc.key[8:]) {
					t.Fatalf("message reveals the key: %q", s)
				}
				if s != "" && !strings.Contains(s, "secret_key") {
					t.Fatalf("message does not name the field: %q", s)
				}
			}
		})
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestCheckUpstreamURL(t *testing.T) {
	tests := []struct {
		raw, want string
	}{
		{"https://qrph.sbx.moduluslabs.io", ""},
		{"https://qrph.sbx.moduluslabs.io/", ""},
		{"http://127.0.0.1:2091", ""},
		{"http://[::1]:2091", ""},
		{"http://localhost:2091", ""},
		{"http://qrph.sbx.moduluslabs.io", "must use https"},
		{"http://10.0.0.5:2091", "must use https"},
		{"http://127.0.0.1.nip.io", "must use https"},
		{"ftp://127.0.0.1", "must use https"},
		{"https://user:pass@host", "credentials"},
		{"https://host?x=1", "query"},
		{"https://host#frag", "query or fragment"},
		{"qrph.sbx.moduluslabs.io", "absolute URL"},
		{"", "absolute URL"},
		{"https://", "absolute URL"},
	}
	for _, tc := range tests {
		u, err := CheckUpstreamURL("qr_url", tc.raw)
		if tc.want == "" {
			if err != nil {
				t.Errorf("%q: %v", tc.raw, err)
			} else if strings.HasSuffix(u.Path, "/") {
				t.Errorf("%q: trailing slash kept", tc.raw)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "qr_url ") {
			t.Errorf("%q: err = %v, want field name and %q", tc.raw, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "pass") {
			t.Errorf("%q: error echoes the URL: %v", tc.raw, err)
		}
	}
}

func TestCheckEnvironmentURL(t *testing.T) {
	p := Default()
	sb, _ := p.Environment(Sandbox)
	prod, _ := p.Environment(Production)
	u, _ := CheckUpstreamURL("qr_url", "https://qrph.moduluslabs.io")
	if err := p.CheckEnvironmentURL(sb, "qr_url", u); err == nil || !strings.Contains(err.Error(), "production host") {
		t.Fatalf("production URL in sandbox: %v", err)
	}
	if err := p.CheckEnvironmentURL(prod, "qr_url", u); err != nil {
		t.Fatalf("production URL in production: %v", err)
	}
	u, _ = CheckUpstreamURL("webhooks_url", "https://webhooks.sbx.moduluslabs.io")
	if err := p.CheckEnvironmentURL(prod, "webhooks_url", u); err == nil || !strings.Contains(err.Error(), "sandbox host") {
		t.Fatalf("sandbox URL in production: %v", err)
	}
	u, _ = CheckUpstreamURL("qr_url", "http://127.0.0.1:2091")
	if err := p.CheckEnvironmentURL(prod, "qr_url", u); err != nil {
		t.Fatalf("a local stand-in is neither environment: %v", err)
	}
}

func TestCheckActivationCode(t *testing.T) {
	p := Default()
	for code, ok := range map[string]bool{
		"A9X4-B7P2-Q6Z8-M3L5": true, "TEST-0000-0000-0001": true, "a9x4-b7p2-q6z8-m3l5": false,
		"A9X4B7P2Q6Z8M3L5": false, "A9X4-B7P2-Q6Z8-M3L": false, "A9X4-B7P2-Q6Z8-M3L5-": false, "": false,
		"MERCHANT_ABC_123": false, "A9X4-B7P2-Q6Z8-M3L5\n": false,
	} {
		err := p.CheckActivationCode("activation_code", code)
		if (err == nil) != ok {
			t.Errorf("%q: err = %v, want ok=%v", code, err, ok)
		}
		if err != nil && (!strings.HasPrefix(err.Error(), "activation_code ") || (code != "" && strings.Contains(err.Error(), code))) {
			t.Errorf("%q: error must name the field and not the value: %v", code, err)
		}
	}
}
