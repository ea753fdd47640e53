package proxy

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/qrphgate/qrphgate/policy"
)

// Error is what the gateway answers the app when it cannot do what was
// asked: a status, a stable machine-readable code, a message, the field at
// fault and, for upstream failures, the provider's own error object. Its
// JSON form is {"error":{"code","message","field","upstream"}}.
type Error struct {
	// Status is the HTTP status to answer with.
	Status int
	// Code is stable and machine-readable (invalid_amount, rate_limited...).
	Code string
	// Message is for humans; it never contains secrets or tokens.
	Message string
	// Field names the request field at fault, if any.
	Field string
	// Upstream is the provider's error, kept verbatim, when there was one.
	Upstream *UpstreamError
	// RetryAfter, when positive, is sent as the Retry-After header.
	RetryAfter time.Duration
	// Err is the underlying cause, for logs only; it is never sent.
	Err error
}

// UpstreamError is the provider's error object plus the HTTP status it came
// with. The provider reuses "referenceNumber" for an error id, not for the
// merchant reference.
type UpstreamError struct {
	Status          int    `json:"status"`
	Code            string `json:"code,omitempty"`
	Error           string `json:"error,omitempty"`
	ReferenceNumber string `json:"referenceNumber,omitempty"`
}

func (e *Error) Error() string {
	msg := e.Code + ": " + e.Message
	if e.Field != "" {
		msg = e.Code + ": " + e.Field + ": " + e.Message
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Codes shared by the outbound and inbound sides (each side adds its own).
const (
	CodeInternal         = "internal_error"
	CodeMethodNotAllowed = "method_not_allowed"
	CodeBodyTooLarge     = "body_too_large"
	CodeUnsupportedMedia = "unsupported_media_type"
)

// validation turns a policy validation error into a 400.
func validation(pe *policy.Error) *Error {
	return &Error{Status: http.StatusBadRequest, Code: pe.Code, Message: pe.Message, Field: pe.Field}
}

// AsError converts any error to an *Error: policy errors become 400s, an
// *Error is returned as is, anything else becomes a 500 internal_error whose
// cause stays in Err (logged, not sent).
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var pe *policy.Error
	if errors.As(err, &pe) {
		return validation(pe)
	}
	return &Error{Status: http.StatusInternalServerError, Code: CodeInternal, Message: "internal error", Err: err}
}

type errorBody struct {
	Error struct {
		Code     string         `json:"code"`
		Message  string         `json:"message"`
		Field    string         `json:"field,omitempty"`
		Upstream *UpstreamError `json:"upstream,omitempty"`
	} `json:"error"`
}

// WriteError answers err as JSON with its status and Retry-After.
func WriteError(w http.ResponseWriter, err error) {
	e := AsError(err)
	var body errorBody
	body.Error.Code, body.Error.Message, body.Error.Field, body.Error.Upstream = e.Code, e.Message, e.Field, e.Upstream
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.FormatInt(int64((e.RetryAfter+time.Second-1)/time.Second), 10))
	}
	if e.Status == http.StatusMethodNotAllowed && h.Get("Allow") == "" {
		h.Set("Allow", http.MethodPost)
	}
	w.WriteHeader(e.Status)
	_ = json.NewEncoder(w).Encode(body)
}
