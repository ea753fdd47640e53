package policy

import (
	"errors"
	"testing"
)

// Seed corpora live in testdata/fuzz/<FuzzName>/ and run as plain tests.

func FuzzParseAmount(f *testing.F) {
	for _, s := range []string{"500.00", "1.00", "99999.99", "01.00", "5.5", "-1.00", "", "1e3.00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseAmount(s)
		if err != nil {
			return
		}
		// Whatever parses formats back to exactly the same text: one
		// canonical spelling per amount, so idempotency can compare text.
		if c < 0 || c.String() != s {
			t.Fatalf("ParseAmount(%q) = %d, which formats as %q", s, c, c.String())
		}
	})
}

func FuzzParsePolicy(f *testing.F) {
	for _, s := range []string{"", "qr:\n  validity: 5m\n", "environments:\n  sandbox:\n    currencies: [PHP, USD]\n", "x: [", "{}"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		p, err := Parse(doc)
		if err != nil {
			return
		}
		// An accepted policy is usable: both environments resolve and the
		// compiled rules are present.
		for _, name := range []string{Sandbox, Production} {
			e, err := p.Environment(name)
			if err != nil || e.RateLimit.Requests <= 0 || len(e.Currencies) == 0 {
				t.Fatalf("accepted policy has unusable %s: %+v %v", name, e, err)
			}
		}
		if p.reference == nil || p.activationCode == nil || p.QR.Validity <= 0 {
			t.Fatal("accepted policy is not compiled")
		}
	})
}

func FuzzDecodeCreateQR(f *testing.F) {
	for _, s := range []string{
		`{"amount":"500.00","currency":"PHP","merchantReferenceNumber":"ORDER-1"}`,
		`{"amount":500,"currency":"PHP"}`, `{"amount":"1.00","amount":"2.00"}`, `[]`, `{`,
		`{"amount":"1.00","currency":"PHP","merchantReferenceNumber":"a","activationCode":"A9X4-B7P2-Q6Z8-M3L5"}`,
		" { \"currency\" : \"PHP\" ,\n\"merchantReferenceNumber\":\"R-1\",\t\"amount\":\"1\" } \r\n",
		`{"amount":"1.00","currency":"PHP","merchantReferenceNumber":"a\u0041"}`, `{"amount":"1.00","currency":"PHP"} x`,
	} {
		f.Add([]byte(s))
	}
	p := Default()
	sb, _ := p.Environment(Sandbox)
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := DecodeCreateQR(body)
		// The quick path answers only where the strict reader agrees.
		if quick, ok := quickCreateQR(body); ok {
			if strict, err := decodeCreateQR(body); err != nil || strict != quick {
				t.Fatalf("quick path %+v, strict reader %+v %v", quick, strict, err)
			}
		}
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) || pe.Code == "" {
				t.Fatalf("error without a code: %v", err)
			}
			return
		}
		if c, err := p.ValidateCreateQR(sb, req); err == nil && (c < 100 || c > 9999999) {
			t.Fatalf("validated amount %d out of range", c)
		}
	})
}
