package preflight

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const listBothShapes = `{"webhooks":[
 {"id":123,"webhookUrl":"https://pay.example.com/webhooks/modulus","actions":["QRPH_SUCCESS","QRPH_DECLINED"],"status":"ENABLED","createdAt":"2024-01-15T10:30:00Z"},
 {"id":"a78efd32-de3b-4854-b599-11ae9f98f97e","webhookAction":"QRPH_DECLINED","webhookStatus":"DISABLED","callbackUrl":"https://PAY.example.com:443/webhooks/other"}
]}`

func TestParseRegistrations(t *testing.T) {
	regs, err := ParseRegistrations([]byte(listBothShapes))
	if err != nil || len(regs) != 2 {
		t.Fatalf("%v %v", regs, err)
	}
	if r := regs[0]; r.ID != "123" || r.URL != "https://pay.example.com/webhooks/modulus" || len(r.Actions) != 2 || r.Status != "ENABLED" {
		t.Errorf("list shape: %+v", r)
	}
	if r := regs[1]; r.ID != "a78efd32-de3b-4854-b599-11ae9f98f97e" || r.URL != "https://PAY.example.com:443/webhooks/other" ||
		len(r.Actions) != 1 || r.Actions[0] != "QRPH_DECLINED" || r.Status != "DISABLED" {
		t.Errorf("create shape: %+v", r)
	}
	if regs, err := ParseRegistrations([]byte(`{"webhooks":[]}`)); err != nil || len(regs) != 0 {
		t.Errorf("empty list: %v %v", regs, err)
	}
	for _, bad := range []string{``, `[]`, `{"Token":"eyJ..."}`, `{"webhooks":{}}`, `{"webhooks":[1]}`, `Pong!`} {
		if _, err := ParseRegistrations([]byte(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestSameURL(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		same bool
	}{
		{"https://pay.example.com/webhooks/modulus", "https://PAY.Example.com:443/webhooks/modulus", true},
		{"https://localhost:8443/webhooks/modulus", "https://localhost:8443/webhooks/modulus", true},
		{"https://pay.example.com/webhooks/modulus", "https://pay.example.com/webhooks/modulus/", false},
		{"https://pay.example.com/webhooks/modulus", "http://pay.example.com/webhooks/modulus", false},
		{"https://pay.example.com/webhooks/modulus", "https://pay.example.com:8443/webhooks/modulus", false},
		{"https://pay.example.com/a?x=1", "https://pay.example.com/a", false},
	} {
		if got := SameURL(tc.a, tc.b); got != tc.same {
			t.Errorf("SameURL(%q, %q) = %v", tc.a, tc.b, got)
		}
	}
}

func TestRegistrationVerdict(t *testing.T) {
	regs, _ := ParseRegistrations([]byte(listBothShapes))
	const api = "http://127.0.0.1:2090"
	if v := RegistrationVerdict(regs, "https://pay.example.com/webhooks/modulus", "QRPH_SUCCESS", api); v.Status != OK || !strings.Contains(v.Reason, "webhook 123") {
		t.Errorf("enabled: %+v", v)
	}
	v := RegistrationVerdict(regs, "https://pay.example.com/webhooks/other", "QRPH_DECLINED", api)
	if v.Status != Fail || !strings.Contains(v.Reason, "status is DISABLED") ||
		!strings.Contains(v.Fix, "curl -X PUT "+api+"/v1/webhooks/a78efd32-de3b-4854-b599-11ae9f98f97e") {
		t.Errorf("disabled: %+v", v)
	}
	v = RegistrationVerdict(regs, "https://pay.example.com/webhooks/other", "QRPH_SUCCESS", api)
	if v.Status != Fail || !strings.Contains(v.Reason, "registered for: https://pay.example.com/webhooks/modulus") ||
		!strings.Contains(v.Fix, `curl -X POST `+api+`/v1/webhooks`) || !strings.Contains(v.Fix, `"webhookAction":"QRPH_SUCCESS"`) {
		t.Errorf("missing: %+v", v)
	}
	if v := RegistrationVerdict(nil, "https://x.example/", "QRPH_SUCCESS", api); v.Status != Fail || strings.Contains(v.Reason, "registered for:") {
		t.Errorf("no registrations: %+v", v)
	}
}

// The provider's answer is untrusted input.
func FuzzParseRegistrations(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "webhooks", "*.json"))
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(listBothShapes))
	f.Fuzz(func(t *testing.T, b []byte) {
		regs, err := ParseRegistrations(b)
		if err != nil {
			return
		}
		for _, r := range regs {
			_ = RegistrationVerdict([]Registration{r}, "https://pay.example.com/webhooks/modulus", "QRPH_SUCCESS", "http://127.0.0.1:2090")
		}
	})
}
