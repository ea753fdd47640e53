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
