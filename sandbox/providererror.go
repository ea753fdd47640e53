package sandbox

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
)

// Provider error codes. The ones the provider documents are used verbatim;
// for the cases its documentation leaves out (validation, JWE, simulate,
// rate limit) the simulator uses its own 99xxxxxx family, so that nobody
// mistakes one of them for a real provider code.
const (
	// Documented by the provider.
	CodeInvalidAPIKey      = "10000013" // QR API: bad or missing Basic credentials
	CodeWebhookAuth        = "20000001" // webhooks API: "Invalid or missing secret key"
	CodeWebhookNotFound    = "20000004" // webhooks API: "Webhook not found"
	MessageInvalidAPIKey   = "Invalid API Key"
	MessageWebhookAuth     = "Invalid or missing secret key"
	MessageWebhookNotFound = "Webhook not found"

	// Simulator-only.
	CodeBadRequestBody     = "99000001" // body is not what the endpoint takes
	CodeTokenUndecryptable = "99000002" // the JWE cannot be opened with the encryption key
	CodeValidation         = "99000003" // create-QR plaintext breaks a rule (the message names the field)
	CodeUnknownMerchant    = "99000004" // activationCode is not one of activation_codes
	CodeWebhookConflict    = "99000005" // same callbackUrl and webhookAction already registered
	CodeWebhookInvalid     = "99000006" // webhook body: bad URL, action or status
	CodeQRNotFound         = "99000007" // simulate: qrBody names no QR created here
	CodeInvalidUseCase     = "99000008" // simulate: missing or unknown useCase
	CodeQRSettled          = "99000009" // simulate: the QR was already paid or declined the other way
	CodeQRExpired          = "99000010" // simulate: the QR's validity has passed
	CodeTooManyWebhooks    = "99000011" // the registry is full
	CodeRouteNotFound      = "99000404"
	CodeMethodNotAllowed   = "99000405"
	CodeRateLimited        = "99000429"
	CodeSimulatedFault     = "99000500" // error_rate fired
	CodeBusy               = "99000503" // too many webhook deliveries in flight
)

// ProviderError is the provider's error object: a numeric-text code, a
// message and an id for this occurrence, which the provider (confusingly)
// calls referenceNumber.
type ProviderError struct {
	Code            string `json:"code"`
	Error           string `json:"error"`
	ReferenceNumber string `json:"referenceNumber"`
}

// writeError answers with a provider-style error object.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, ProviderError{Code: code, Error: msg, ReferenceNumber: newUUID()})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, `{"code":"99000500","error":"encoding the answer failed"}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// newUUID returns a random (version 4) UUID, the form the provider's ids
// take.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand panics rather)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
