package policy

import "testing"

func TestMaskActivationCode(t *testing.T) {
	for code, want := range map[string]string{
		"A9X4-B7P2-Q6Z8-M3L5":  "****-****-****-M3L5",
		"TEST-0000-0000-0001":  "****-****-****-0001",
		"AB-CD":                "****-CD",
		"registered-header":    "****-header",
		"plainheadervalue1234": "****1234",
		"short":                "****",
		"":                     "",
	} {
		if got := MaskActivationCode(code); got != want {
			t.Errorf("MaskActivationCode(%q) = %q, want %q", code, got, want)
		}
	}
}
