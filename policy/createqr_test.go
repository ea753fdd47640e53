package policy

import (
	"errors"
	"strings"
	"testing"
)

func TestDecodeCreateQR(t *testing.T) {
	tests := []struct {
		name, body  string
		code, field string
	}{
		{"valid", `{"amount":"500.00","currency":"PHP","merchantReferenceNumber":"ORDER-1"}`, "", ""},
		{"valid with activation code", `{"amount":"500.00","currency":"PHP","merchantReferenceNumber":"ORDER-1","activationCode":"A9X4-B7P2-Q6Z8-M3L5"}`, "", ""},
		{"whitespace around", " \n{\"amount\":\"1.00\",\"currency\":\"PHP\",\"merchantReferenceNumber\":\"a\"}\n ", "", ""},
		{"empty body", ``, CodeInvalidJSON, ""},
		{"array", `[]`, CodeInvalidJSON, ""},
		{"string", `"x"`, CodeInvalidJSON, ""},
		{"truncated", `{"amount":"500.00"`, CodeInvalidJSON, ""},
		{"trailing object", `{"amount":"500.00","currency":"PHP","merchantReferenceNumber":"a"}{}`, CodeInvalidJSON, ""},
		{"trailing garbage", `{"amount":"500.00","currency":"PHP","merchantReferenceNumber":"a"} x`, CodeInvalidJSON, ""},
		{"invalid utf8", "{\"amount\":\"\xff\"}", CodeInvalidJSON, ""},
		{"unknown field", `{"amount":"500.00","currency":"PHP","merchantReferenceNumber":"a","tip":"1.00"}`, CodeUnknownField, "tip"},
		{"case-different field", `{"Amount":"500.00"}`, CodeUnknownField, "Amount"},
		{"repeated field", `{"amount":"1.00","amount":"99999.99","currency":"PHP","merchantReferenceNumber":"a"}`, CodeInvalidJSON, "amount"},
		{"amount as number", `{"amount":500.00,"currency":"PHP","merchantReferenceNumber":"a"}`, CodeInvalidAmount, "amount"},
		{"amount null", `{"amount":null,"currency":"PHP","merchantReferenceNumber":"a"}`, CodeInvalidAmount, "amount"},
		{"currency as array", `{"amount":"1.00","currency":["PHP"],"merchantReferenceNumber":"a"}`, CodeInvalidCurrency, "currency"},
		{"reference as number", `{"amount":"1.00","currency":"PHP","merchantReferenceNumber":1}`, CodeInvalidReference, "merchantReferenceNumber"},
		{"activation code as object", `{"amount":"1.00","currency":"PHP","merchantReferenceNumber":"a","activationCode":{}}`, CodeInvalidActivationCode, "activationCode"},
		{"missing amount", `{"currency":"PHP","merchantReferenceNumber":"a"}`, CodeMissingField, "amount"},
		{"missing currency", `{"amount":"1.00","merchantReferenceNumber":"a"}`, CodeMissingField, "currency"},
		{"missing reference", `{"amount":"1.00","currency":"PHP"}`, CodeMissingField, "merchantReferenceNumber"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeCreateQR([]byte(tc.body))
			checkErr(t, err, tc.code, tc.field)
		})
	}
}

func TestValidateCreateQR(t *testing.T) {
	p := Default()
	sb, _ := p.Environment(Sandbox)
	ok := CreateQR{Amount: "500.00", Currency: "PHP", MerchantReferenceNumber: "5e91bc6c-f7e2-4a39-ae0e-5e93985c94a4"}
	with := func(f func(*CreateQR)) CreateQR { r := ok; f(&r); return r }
	tests := []struct {
		name        string
		req         CreateQR
		code, field string
		centavos    Centavos
	}{
		{"valid", ok, "", "", 50000},
		{"minimum", with(func(r *CreateQR) { r.Amount = "1.00" }), "", "", 100},
		{"maximum", with(func(r *CreateQR) { r.Amount = "99999.99" }), "", "", 9999999},
		{"below minimum", with(func(r *CreateQR) { r.Amount = "0.99" }), CodeAmountOutOfRange, "amount", 0},
		{"zero", with(func(r *CreateQR) { r.Amount = "0.00" }), CodeAmountOutOfRange, "amount", 0},
		{"above maximum", with(func(r *CreateQR) { r.Amount = "100000.00" }), CodeAmountOutOfRange, "amount", 0},
		{"one decimal", with(func(r *CreateQR) { r.Amount = "5.5" }), CodeInvalidAmount, "amount", 0},
		{"no decimals", with(func(r *CreateQR) { r.Amount = "5" }), CodeInvalidAmount, "amount", 0},
		{"three decimals", with(func(r *CreateQR) { r.Amount = "5.000" }), CodeInvalidAmount, "amount", 0},
		{"negative", with(func(r *CreateQR) { r.Amount = "-5.00" }), CodeInvalidAmount, "amount", 0},
		{"exponent", with(func(r *CreateQR) { r.Amount = "5e2" }), CodeInvalidAmount, "amount", 0},
		{"lowercase currency", with(func(r *CreateQR) { r.Currency = "php" }), CodeInvalidCurrency, "currency", 0},
		{"long currency", with(func(r *CreateQR) { r.Currency = "PHPP" }), CodeInvalidCurrency, "currency", 0},
		{"empty currency", with(func(r *CreateQR) { r.Currency = "" }), CodeInvalidCurrency, "currency", 0},
		{"currency not in environment", with(func(r *CreateQR) { r.Currency = "USD" }), CodeUnsupportedCurrency, "currency", 0},
		{"empty reference", with(func(r *CreateQR) { r.MerchantReferenceNumber = "" }), CodeInvalidReference, "merchantReferenceNumber", 0},
		{"36-char reference", with(func(r *CreateQR) { r.MerchantReferenceNumber = strings.Repeat("a", 36) }), "", "", 50000},
		{"37-char reference", with(func(r *CreateQR) { r.MerchantReferenceNumber = strings.Repeat("a", 37) }), CodeInvalidReference, "merchantReferenceNumber", 0},
		{"reference with underscore", with(func(r *CreateQR) { r.MerchantReferenceNumber = "ORDER_1" }), CodeInvalidReference, "merchantReferenceNumber", 0},
		{"reference with space", with(func(r *CreateQR) { r.MerchantReferenceNumber = "ORDER 1" }), CodeInvalidReference, "merchantReferenceNumber", 0},
		{"reference with newline", with(func(r *CreateQR) { r.MerchantReferenceNumber = "ORDER-1\n" }), CodeInvalidReference, "merchantReferenceNumber", 0},
		{"activation code ok", with(func(r *CreateQR) { r.ActivationCode = "A9X4-B7P2-Q6Z8-M3L5" }), "", "", 50000},
		{"activation code lowercase", with(func(r *CreateQR) { r.ActivationCode = "a9x4-b7p2-q6z8-m3l5" }), CodeInvalidActivationCode, "activationCode", 0},
		{"activation code short group", with(func(r *CreateQR) { r.ActivationCode = "A9X-B7P2-Q6Z8-M3L5" }), CodeInvalidActivationCode, "activationCode", 0},
		{"activation code header style", with(func(r *CreateQR) { r.ActivationCode = "MERCHANT_ABC_123" }), CodeInvalidActivationCode, "activationCode", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := p.ValidateCreateQR(sb, tc.req)
			checkErr(t, err, tc.code, tc.field)
			if got != tc.centavos {
				t.Fatalf("centavos = %d, want %d", got, tc.centavos)
			}
		})
	}
}

func TestValidationMessagesDoNotEchoValues(t *testing.T) {
	p := Default()
	sb, _ := p.Environment(Sandbox)
	_, err := p.ValidateCreateQR(sb, CreateQR{Amount: "1.00", Currency: "PHP", MerchantReferenceNumber: "ORDER-1", ActivationCode: "SECRETCODE-ZZZZ"})
	if err == nil || strings.Contains(err.Error(), "SECRETCODE") {
		t.Fatalf("err = %v", err)
	}
}

func checkErr(t *testing.T, err error, code, field string) {
	t.Helper()
	if code == "" {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	var pe *Error
	if !errors.As(err, &pe) {
		t.Fatalf("err = %v (%T), want *policy.Error with code %s", err, err, code)
	}
	if pe.Code != code || pe.Field != field {
		t.Fatalf("got code %q field %q (%v), want code %q field %q", pe.Code, pe.Field, pe, code, field)
	}
	if pe.Message == "" {
		t.Fatal("empty message")
	}
}
