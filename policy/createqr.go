package policy

import (
	"fmt"
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
	if req, ok := quickCreateQR(body); ok {
		return req, nil
	}
	return decodeCreateQR(body)
}

// decodeCreateQR is DecodeCreateQR through the strict object reader, for
// every body quickCreateQR does not take, and for its errors.
func decodeCreateQR(body []byte) (CreateQR, error) {
	fields, err := DecodeStringFields(body, createQRFields, codeFor)
	if err != nil {
		return CreateQR{}, err
	}
	for _, f := range createQRFields[:3] {
		if _, ok := fields[f]; !ok {
			return CreateQR{}, fieldErr(CodeMissingField, f, "is required")
		}
	}
	return CreateQR{
		ActivationCode: fields["activationCode"], Currency: fields["currency"],
		Amount: fields["amount"], MerchantReferenceNumber: fields["merchantReferenceNumber"],
	}, nil
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

// quickCreateQR decodes the usual create-QR body without encoding/json (on
// the hot path its reader cost more than the rest of the validation):
// one object of known members, each once, with printable-ASCII string
// values that need no unescaping, whitespace only between tokens and after
// the object, and the three required members. It answers only when the
// body is exactly such an object, so that decodeCreateQR would return the
// same request; ok false sends every other body (and every error) to
// decodeCreateQR. FuzzDecodeCreateQR checks that they agree.
func quickCreateQR(b []byte) (req CreateQR, ok bool) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return CreateQR{}, false
	}
	var seen [4]bool
	for first := true; ; first = false {
		i = skipSpace(b, i+1)
		if i >= len(b) {
			return CreateQR{}, false
		}
		if b[i] == '}' && first {
			return CreateQR{}, false // {} lacks the required members
		}
		name, next, ok := plainString(b, i)
		if !ok {
			return CreateQR{}, false
		}
		i = skipSpace(b, next)
		if i >= len(b) || b[i] != ':' {
			return CreateQR{}, false
		}
		val, next, ok := plainString(b, skipSpace(b, i+1))
		if !ok {
			return CreateQR{}, false
		}
		var slot *string
		var n int
		switch string(name) {
		case "amount":
			slot, n = &req.Amount, 0
		case "currency":
			slot, n = &req.Currency, 1
		case "merchantReferenceNumber":
			slot, n = &req.MerchantReferenceNumber, 2
		case "activationCode":
			slot, n = &req.ActivationCode, 3
		default:
			return CreateQR{}, false
		}
		if seen[n] {
			return CreateQR{}, false
		}
		seen[n] = true
		*slot = string(val)
		i = skipSpace(b, next)
		if i >= len(b) {
			return CreateQR{}, false
		}
		if b[i] == '}' {
			break
		}
		if b[i] != ',' {
			return CreateQR{}, false
		}
	}
	if skipSpace(b, i+1) != len(b) || !seen[0] || !seen[1] || !seen[2] {
		return CreateQR{}, false
	}
	return req, true
}

// plainString reads the JSON string at b[i] when it is printable ASCII
// without escapes, and returns its contents and the index after it.
func plainString(b []byte, i int) ([]byte, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, 0, false
	}
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return b[i+1 : j], j + 1, true
		case c < 0x20 || c >= 0x7f || c == '\\':
			return nil, 0, false
		}
	}
	return nil, 0, false
}

// skipSpace returns the index of the first byte at or after i that is not
// JSON whitespace.
func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}
