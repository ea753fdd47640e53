package policy

// Stable, machine-readable validation codes. They appear in API error bodies
// and are part of the contract: never rename one.
const (
	CodeInvalidJSON           = "invalid_json"
	CodeUnknownField          = "unknown_field"
	CodeMissingField          = "missing_field"
	CodeInvalidAmount         = "invalid_amount"
	CodeAmountOutOfRange      = "amount_out_of_range"
	CodeInvalidCurrency       = "invalid_currency"
	CodeUnsupportedCurrency   = "unsupported_currency"
	CodeInvalidReference      = "invalid_reference"
	CodeInvalidActivationCode = "invalid_activation_code"
)

// Error is a validation failure: a stable code, the JSON field it concerns
// (empty for the body as a whole) and a human-readable message. Messages
// state the rule; they never echo the rejected value.
type Error struct {
	Code    string
	Field   string
	Message string
}

func (e *Error) Error() string {
	if e.Field == "" {
		return e.Message
	}
	return e.Field + ": " + e.Message
}

func fieldErr(code, field, msg string) *Error { return &Error{Code: code, Field: field, Message: msg} }
