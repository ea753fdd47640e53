package inbound

import (
	"errors"
	"strings"
	"testing"
)

func TestParseEnvelope(t *testing.T) {
	tests := []struct {
		body, token, field, err string
	}{
		{body: `{"data":"a.b"}`, token: "a.b", field: "data"},
		{body: ` {"Token" : "x"} ` + "\n", token: "x", field: "Token"},
		{body: `{"sentAt":1,"data":"x","extra":{"a":[1,2]}}`, token: "x", field: "data"},
		{body: `{"data":"\u0061"}`, token: "a", field: "data"},
		{body: `{"data":""}`, token: "", field: "data"},
		{body: ``, err: "must be a JSON object"},
		{body: `[]`, err: "must be a JSON object"},
		{body: `"data"`, err: "must be a JSON object"},
		{body: `{}`, err: `needs a "data" or "Token" string`},
		{body: `{"token":"x"}`, err: `needs a "data" or "Token" string`},
		{body: `{"DATA":"x"}`, err: `needs a "data" or "Token" string`},
		{body: `{"data":"x","Token":"y"}`, err: "has both"},
		{body: `{"Token":"y","data":"x"}`, err: "has both"},
		{body: `{"data":"x","data":"x"}`, err: "appears twice"},
		{body: `{"data":1}`, err: "must be a string"},
		{body: `{"data":null}`, err: "must be a string"},
		{body: `{"data":["x"]}`, err: "must be a string"},
		{body: `{"data":"x"}{}`, err: "data after the JSON object"},
		{body: `{"data":"x"`, err: "is not valid JSON"},
		{body: `{"data":"x",}`, err: "is not valid JSON"},
		{body: `{"data" "x"}`, err: "is not valid JSON"},
	}
	for _, tc := range tests {
		env, err := ParseEnvelope([]byte(tc.body))
		if tc.err != "" {
			if err == nil || !errors.Is(err, ErrEnvelope) || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: err = %v, want %q", tc.body, err, tc.err)
			}
			continue
		}
		if err != nil || env.Token != tc.token || env.Field != tc.field {
			t.Errorf("%s: %+v %v", tc.body, env, err)
		}
	}
}

func TestParsePayload(t *testing.T) {
	tests := []struct {
		name, body        string
		action, reference string
		actionF, refF     string
		err               string
	}{
		{name: "payload page", body: `{"action":"QRPH_SUCCESS","referenceNumber":"REF-1","amount":100000}`,
			action: "QRPH_SUCCESS", reference: "REF-1", actionF: "action", refF: "referenceNumber"},
		{name: "security page", body: `{"transactionId":"a78efd32","status":"SUCCESS"}`,
			action: "SUCCESS", reference: "a78efd32", actionF: "status", refF: "transactionId"},
		{name: "first listed field wins", body: `{"status":"S","action":"A","id":"I","referenceNumber":"R"}`,
			action: "A", reference: "R", actionF: "action", refF: "referenceNumber"},
		{name: "merchantReferenceNumber", body: `{"webhookAction":"QRPH_DECLINED","merchantReferenceNumber":"ORDER-1"}`,
			action: "QRPH_DECLINED", reference: "ORDER-1", actionF: "webhookAction", refF: "merchantReferenceNumber"},
		{name: "integer id", body: `{"action":"A","id":12345}`, action: "A", reference: "12345", actionF: "action", refF: "id"},
		{name: "nested values are fine", body: `{"action":"A","id":"1","meta":{"action":"x"},"list":[1,{"a":null}]}`,
			action: "A", reference: "1", actionF: "action", refF: "id"},
		{name: "array", body: `[{"action":"A","id":"1"}]`, err: "must be a JSON object"},
		{name: "not JSON", body: `action=A`, err: "must be a JSON object"},
		{name: "trailing data", body: `{"action":"A","id":"1"} x`, err: "after the JSON object"},
		{name: "invalid UTF-8", body: "{\"action\":\"A\xff\",\"id\":\"1\"}", err: "UTF-8"},
		{name: "repeated member", body: `{"action":"A","id":"1","id":"2"}`, err: "appears twice"},
		{name: "no action", body: `{"id":"1"}`, err: "no action or status (looked for action, webhookAction, status)"},
		{name: "no reference", body: `{"action":"A"}`, err: "no reference or transaction id"},
		{name: "numeric action", body: `{"action":1,"id":"1"}`, err: "action must be a string"},
		{name: "null reference", body: `{"action":"A","referenceNumber":null}`, err: "referenceNumber must be a string or an integer"},
		{name: "fractional id", body: `{"action":"A","id":1.5}`, err: "id must be a string or an integer"},
		{name: "empty action", body: `{"action":"","id":"1"}`, err: "action must be 1 to 128 characters"},
		{name: "long reference", body: `{"action":"A","id":"` + strings.Repeat("x", 129) + `"}`, err: "id must be 1 to 128"},
		{name: "control character", body: `{"action":"A\n","id":"1"}`, err: "control character"},
		{name: "C1 control (NEL) in a reference", body: `{"action":"A","referenceNumber":"ORDER-1\u0085forged"}`, err: "referenceNumber contains a control character"},
		{name: "raw NEL in an action", body: "{\"action\":\"A\u0085\",\"id\":\"1\"}", err: "action contains a control character"},
		{name: "C1 CSI", body: `{"action":"A","id":"x\u009b31m"}`, err: "id contains a control character"},
		{name: "line separator", body: `{"action":"A","id":"x\u2028y"}`, err: "id contains a control character"},
		{name: "paragraph separator", body: `{"action":"A\u2029","id":"1"}`, err: "action contains a control character"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParsePayload([]byte(tc.body), DefaultActionFields, DefaultReferenceFields)
			if tc.err != "" {
				if err == nil || !errors.Is(err, ErrPayload) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			want := Payload{Action: tc.action, ActionField: tc.actionF, Reference: tc.reference, ReferenceField: tc.refF}
			p.TransactionID = "" // TestParsePayloadTransactionID
			if err != nil || p != want {
				t.Fatalf("got %+v %v, want %+v", p, err, want)
			}
		})
	}
}

func TestParsePayloadConfiguredFields(t *testing.T) {
	p, err := ParsePayload([]byte(`{"event":"paid","orderNo":"O-1","action":"ignored"}`), []string{"event"}, []string{"orderNo"})
	if err != nil || p.Action != "paid" || p.Reference != "O-1" {
		t.Fatalf("%+v %v", p, err)
	}
}

func TestDedupeKey(t *testing.T) {
	a := Payload{Action: "QRPH_SUCCESS", Reference: "R1"}.DedupeKey()
	if a != (Payload{Action: "QRPH_SUCCESS", Reference: "R1", ActionField: "status", ReferenceField: "id"}).DedupeKey() {
		t.Fatal("the key must not depend on which field carried the values")
	}
	for _, other := range []Payload{{Action: "QRPH_DECLINED", Reference: "R1"}, {Action: "QRPH_SUCCESSR", Reference: "1"}} {
		if other.DedupeKey() == a {
			t.Fatalf("%+v collides with %+v", other, a)
		}
	}
	// A merchant named inside the payload is part of the key.
	if (Payload{Action: "QRPH_SUCCESS", Reference: "R1", Merchant: "A"}).DedupeKey() == (Payload{Action: "QRPH_SUCCESS", Reference: "R1", Merchant: "B"}).DedupeKey() {
		t.Fatal("the payload's merchant must be part of the key")
	}
	if (Payload{Merchant: "A", Action: "B", Reference: "C"}).DedupeKey() == (Payload{Merchant: "A\x00B", Action: "", Reference: "C"}).DedupeKey() {
		t.Fatal("field boundaries must not shift")
	}
	if strings.Contains(a, "R1") || len(a) != len("webhook:")+64 {
		t.Fatalf("key %q", a)
	}
	// The provider's transaction id is part of the key.
	if (Payload{Action: "QRPH_SUCCESS", Reference: "R1", TransactionID: "t1"}).DedupeKey() == (Payload{Action: "QRPH_SUCCESS", Reference: "R1", TransactionID: "t2"}).DedupeKey() {
		t.Fatal("the payload's transaction id must be part of the key")
	}
}

// The payload's activationCode is read when well formed; a malformed one is
// left out (and never fails the payload).
func TestParsePayloadMerchant(t *testing.T) {
	for body, want := range map[string]string{
		`{"action":"A","referenceNumber":"R","activationCode":"A9X4-B7P2-Q6Z8-M3L5"}`: "A9X4-B7P2-Q6Z8-M3L5",
		`{"action":"A","referenceNumber":"R"}`:                                        "",
		`{"action":"A","referenceNumber":"R","activationCode":12}`:                    "",
		`{"action":"A","referenceNumber":"R","activationCode":"has space"}`:           "",
		`{"action":"A","referenceNumber":"R","ActivationCode":"X"}`:                   "",
	} {
		p, err := ParsePayload([]byte(body), DefaultActionFields, DefaultReferenceFields)
		if err != nil || p.Merchant != want {
			t.Errorf("%s: merchant %q, %v; want %q", body, p.Merchant, err, want)
		}
	}
}

// The transaction id is picked up for the logs when present and well
// formed, and never makes a payload fail.
func TestParsePayloadTransactionID(t *testing.T) {
	for body, want := range map[string]string{
		`{"action":"A","referenceNumber":"R","transactionId":"tx-1","id":"other"}`: "tx-1",
		`{"action":"A","referenceNumber":"R","id":"a78efd32"}`:                     "a78efd32",
		`{"action":"A","referenceNumber":"R","id":42}`:                             "42",
		`{"action":"A","referenceNumber":"R"}`:                                     "",
		`{"action":"A","referenceNumber":"R","transactionId":{"x":1}}`:             "",
	} {
		p, err := ParsePayload([]byte(body), DefaultActionFields, DefaultReferenceFields)
		if err != nil || p.TransactionID != want || p.Reference != "R" {
			t.Errorf("%s: %+v %v, want transaction id %q", body, p, err, want)
		}
	}
}
