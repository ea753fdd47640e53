package policy

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"unicode/utf8"
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

// WalkObject's walk of valid JSON gives the members and the error that
// encoding/json's token reader gives.
func FuzzWalkObject(f *testing.F) {
	for _, s := range []string{
		`{"a":"b","c":1,"d":{"e":[1,{"f":"}"}]},"g":null,"h":true,"i":-1.5e3}`,
		` { "a\u0041" : "x\"y" , "b":[] , "c":{} } `, `{}`, `{"a":1}x`, `{"a":1,}`, `[1]`, `{"a":"\ud800"}`,
		"{\"\\\\\":\"\\\\\"}", `{"a":{"b":"c\\"}}`, "{\"a\":\"\xff\"}",
	} {
		f.Add([]byte(s))
	}
	type m struct{ name, value string }
	walk := func(w func([]byte, func(string, json.RawMessage) error) error, body []byte) ([]m, string) {
		var got []m
		err := w(body, func(name string, value json.RawMessage) error {
			got = append(got, m{name, string(value)})
			if len(got) == 3 {
				return errors.New("third member refused")
			}
			return nil
		})
		if err != nil {
			return got, err.Error()
		}
		return got, ""
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		fast, ferr := walk(WalkObject, body)
		slow, serr := walk(func(b []byte, f func(string, json.RawMessage) error) error {
			if !utf8.Valid(b) {
				return WalkObject(b, f)
			}
			return walkDecoder(b, f)
		}, body)
		if ferr != serr || !slices.Equal(fast, slow) {
			t.Fatalf("WalkObject %q %v, token reader %q %v", ferr, fast, serr, slow)
		}
	})
}
