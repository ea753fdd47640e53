package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// CreateQR is the plaintext of a create-QR request, as the app sends it to
// the gateway and (with ActivationCode filled in) as the provider receives it.
// Field order is the provider's documented order.
type CreateQR struct {
	ActivationCode          string `json:"activationCode,omitempty"`
	Currency                string `json:"currency"`
	Amount                  string `json:"amount"`
	MerchantReferenceNumber string `json:"merchantReferenceNumber"`
}

// createQRFields maps JSON names to the struct, in the order errors are
// reported for missing fields.
var createQRFields = []string{"amount", "currency", "merchantReferenceNumber", "activationCode"}

// DecodeCreateQR strictly decodes a create-QR body: a single JSON object,
// every member a string, no unknown or repeated members, nothing after it.
// It checks shape only; ValidateCreateQR checks the values.
func DecodeCreateQR(body []byte) (CreateQR, error) {
	var req CreateQR
	if !utf8.Valid(body) {
		return req, fieldErr(CodeInvalidJSON, "", "body is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return req, fieldErr(CodeInvalidJSON, "", "body must be a JSON object")
	}
	seen := make(map[string]bool, 4)
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return req, fieldErr(CodeInvalidJSON, "", "body is not valid JSON")
		}
		name := t.(string)
		var dst *string
		switch name {
		case "amount":
			dst = &req.Amount
		case "currency":
			dst = &req.Currency
		case "merchantReferenceNumber":
			dst = &req.MerchantReferenceNumber
		case "activationCode":
			dst = &req.ActivationCode
		default:
			return req, fieldErr(CodeUnknownField, truncateField(name), "unknown field; allowed: amount, currency, merchantReferenceNumber, activationCode")
		}
		if seen[name] {
			return req, fieldErr(CodeInvalidJSON, name, "field appears more than once")
		}
		seen[name] = true
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return req, fieldErr(CodeInvalidJSON, "", "body is not valid JSON")
		}
		if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, dst) != nil {
			return req, fieldErr(codeFor(name), name, "must be a JSON string")
		}
	}
	if _, err := dec.Token(); err != nil {
		return req, fieldErr(CodeInvalidJSON, "", "body is not valid JSON")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return req, fieldErr(CodeInvalidJSON, "", "unexpected data after the JSON object")
	}
	for _, f := range createQRFields[:3] {
		if !seen[f] {
			return req, fieldErr(CodeMissingField, f, "is required")
		}
	}
	return req, nil
}

func codeFor(field string) string {
	switch field {
	case "amount":
		return CodeInvalidAmount
	case "currency":
		return CodeInvalidCurrency
	case "merchantReferenceNumber":
		return CodeInvalidReference
	default:
		return CodeInvalidActivationCode
	}
}

// truncateField bounds an unknown member name echoed back in an error.
func truncateField(s string) string {
	if len(s) > 64 {
		return s[:64]
	}
	return s
}

// ValidateCreateQR checks a decoded request against the rules of env and
// returns the amount in centavos. ActivationCode is checked for format when
// present; whether it names a configured merchant is the caller's concern.
func (p *Policy) ValidateCreateQR(env Environment, req CreateQR) (Centavos, error) {
	amount, err := ParseAmount(req.Amount)
	if err != nil {
		return 0, fieldErr(CodeInvalidAmount, "amount", err.Error())
	}
	if lo, hi := Centavos(p.QR.Amount.Min), Centavos(p.QR.Amount.Max); amount < lo || amount > hi {
		return 0, fieldErr(CodeAmountOutOfRange, "amount", fmt.Sprintf("must be between %s and %s", lo, hi))
	}
	if !currencyCode.MatchString(req.Currency) {
		return 0, fieldErr(CodeInvalidCurrency, "currency", "must be a three-letter ISO 4217 code in capitals, e.g. PHP")
	}
	if !env.AllowsCurrency(req.Currency) {
		return 0, fieldErr(CodeUnsupportedCurrency, "currency", fmt.Sprintf("is not accepted in %s (allowed: %v)", env.Name, env.Currencies))
	}
	if !p.reference.MatchString(req.MerchantReferenceNumber) {
		return 0, fieldErr(CodeInvalidReference, "merchantReferenceNumber", "must be 1-36 letters, digits or hyphens")
	}
	if req.ActivationCode != "" && !p.activationCode.MatchString(req.ActivationCode) {
		return 0, fieldErr(CodeInvalidActivationCode, "activationCode", "must look like XXXX-XXXX-XXXX-XXXX")
	}
	return amount, nil
}
