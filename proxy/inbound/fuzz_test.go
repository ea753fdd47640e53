package inbound

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParseEnvelope: any body either parses to exactly one of the two
// fields, or is refused with ErrEnvelope; it never panics.
func FuzzParseEnvelope(f *testing.F) {
	for _, s := range []string{`{"data":"a.b.c.d.e"}`, `{"Token":"x"}`, `{"data":"x","Token":"y"}`, `{"data":1}`, `[]`, `{"a":{"b":[1,2,{"c":null}]},"data":"\ud83d\ude00"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		env, err := ParseEnvelope(body)
		if err != nil {
			if !strings.HasPrefix(err.Error(), ErrEnvelope.Error()+": ") {
				t.Fatalf("error %q lacks the envelope prefix", err)
			}
			if env != (Envelope{}) {
				t.Fatalf("error with a result: %+v", env)
			}
			return
		}
		if env.Field != EnvelopeData && env.Field != EnvelopeToken {
			t.Fatalf("field %q", env.Field)
		}
		if !strings.Contains(string(body), `"`+env.Field+`"`) {
			t.Fatalf("field %q not in the body", env.Field)
		}
	})
}

// FuzzParsePayload: accepted payloads yield bounded, control-free values
// from one of the configured fields; the rest are refused with ErrPayload.
func FuzzParsePayload(f *testing.F) {
	for _, s := range []string{
		`{"action":"QRPH_SUCCESS","referenceNumber":"REF-1","amount":100000}`,
		`{"transactionId":"a78efd32","status":"SUCCESS"}`, `{"action":"A","id":12}`, `{"action":"A","id":"1","id":"2"}`,
		`{"action":"A\u0000","id":"1"}`, `{"action":"\u00e9","id":"-0"}`, `[1]`, `{"action":"A","id":1e3}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := ParsePayload(body, DefaultActionFields, DefaultReferenceFields)
		if err != nil {
			if !strings.HasPrefix(err.Error(), ErrPayload.Error()+": ") {
				t.Fatalf("error %q lacks the payload prefix", err)
			}
			return
		}
		for _, v := range []string{p.Action, p.Reference} {
			if v == "" || len(v) > maxFieldLen || !utf8.ValidString(v) || strings.ContainsAny(v, "\x00\n\r\t\x7f") {
				t.Fatalf("accepted value %q", v)
			}
		}
		if !slices.Contains(DefaultActionFields, p.ActionField) || !slices.Contains(DefaultReferenceFields, p.ReferenceField) {
			t.Fatalf("fields %q %q", p.ActionField, p.ReferenceField)
		}
	})
}

// FuzzResultOf: what the ledger is told about any payload ParsePayload
// accepts is bounded and well formed; reading it never panics.
func FuzzResultOf(f *testing.F) {
	for _, s := range []string{
		`{"action":"QRPH_SUCCESS","referenceNumber":"REF-1","amount":100000,"currency":"PHP"}`,
		`{"status":"SUCCESS","transactionId":"a78efd32","merchantReferenceNumber":"R","amount":"500.00"}`,
		`{"action":"A","id":"1","amount":-5,"currency":"PH"}`, `{"action":"A","id":"1","amount":1e3}`,
		`{"action":"A","id":"1","amount":"12.345","currency":"\u00e9\u00e9\u00e9"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := ParsePayload(body, DefaultActionFields, DefaultReferenceFields)
		if err != nil {
			return
		}
		r := resultOf(body, p)
		if r.Action != p.Action || r.TransactionID != p.TransactionID || len(r.Reference) > maxFieldLen ||
			(r.Currency != "" && !isCurrencyCode(r.Currency)) || (!r.HasAmount && r.Amount != 0) {
			t.Fatalf("%s: %+v", body, r)
		}
	})
}
