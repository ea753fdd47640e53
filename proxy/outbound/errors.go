package outbound

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/qrphgate/qrphgate/proxy"
)

// Error codes of the outbound API, beyond the validation codes of package
// policy. They are part of the contract: never rename one.
const (
	CodeNotFound              = "not_found"
	CodeUnknownMerchant       = "unknown_merchant"
	CodeIdempotencyConflict   = "idempotency_conflict"
	CodeRequestInFlight       = "request_in_flight"
	CodeQueueFull             = "queue_full"
	CodeRateLimited           = "rate_limited"
	CodeMerchantRateLimited   = "merchant_rate_limited"
	CodeUpstreamRateLimited   = "upstream_rate_limited"
	CodeUpstreamUnauthorized  = "upstream_unauthorized"
	CodeUpstreamRejected      = "upstream_rejected"
	CodeUpstreamUnavailable   = "upstream_unavailable"
	CodeUpstreamBadResponse   = "upstream_bad_response"
	CodeUpstreamTimeout       = "upstream_timeout"
	CodeBreakerOpen           = "breaker_open"
	CodeCredentialsRejected   = "credentials_rejected"
	CodeCredentialsUnverified = "credentials_unverified"
	CodeStoreUnavailable      = "store_unavailable"
	CodeWebhooksNotConfigured = "webhooks_not_configured"
	CodeSandboxOnly           = "sandbox_only"
	CodeClientClosed          = "client_closed"

	// Webhook-management validation codes.
	CodeInvalidCallbackURL   = "invalid_callback_url"
	CodeInvalidWebhookAction = "invalid_webhook_action"
	CodeInvalidWebhookStatus = "invalid_webhook_status"
	CodeInvalidUseCase       = "invalid_use_case"
	CodeInvalidQRBody        = "invalid_qr_body"
	CodeInvalidWebhookID     = "invalid_webhook_id"
	CodeInvalidHeader        = "invalid_header"
)

// statusClientClosed is what Caddy and nginx log for a client that left
// before the answer; nothing is written to it.
const statusClientClosed = 499

func newErr(status int, code, field, msg string) *proxy.Error {
	return &proxy.Error{Status: status, Code: code, Field: field, Message: msg}
}

// maxUpstreamText bounds the provider's free text kept in an error.
const maxUpstreamText = 512

// parseUpstreamError reads the provider's error object
// {"code","error","referenceNumber"} from an error answer. code may be a
// string or a number. Anything else yields the status alone; free text is
// scrubbed of configured secrets and bounded.
func parseUpstreamError(status int, body []byte, scrub func(string) string) *proxy.UpstreamError {
	ue := &proxy.UpstreamError{Status: status}
	var raw struct {
		Code            json.RawMessage `json:"code"`
		Error           json.RawMessage `json:"error"`
		Message         json.RawMessage `json:"message"`
		ReferenceNumber json.RawMessage `json:"referenceNumber"`
	}
	if json.Unmarshal(body, &raw) != nil {
		return ue
	}
	ue.Code = jsonScalar(raw.Code)
	ue.Error = jsonScalar(raw.Error)
	if ue.Error == "" {
		ue.Error = jsonScalar(raw.Message)
	}
	ue.ReferenceNumber = jsonScalar(raw.ReferenceNumber)
	ue.Code = proxy.Truncate(scrub(ue.Code), 64)
	ue.Error = proxy.Truncate(scrub(ue.Error), maxUpstreamText)
	ue.ReferenceNumber = proxy.Truncate(scrub(ue.ReferenceNumber), 128)
	return ue
}

// jsonScalar returns a JSON string's value or a number's text; "" otherwise.
func jsonScalar(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	return ""
}

// upstreamStatusError maps a provider error answer to what the app gets:
// 429 stays 429, 401/403 and other 4xx keep their status, 5xx become 502.
func upstreamStatusError(status int, body []byte, retryAfter time.Duration, scrub func(string) string) *proxy.Error {
	ue := parseUpstreamError(status, body, scrub)
	switch {
	case status == http.StatusTooManyRequests:
		return &proxy.Error{Status: status, Code: CodeUpstreamRateLimited, Message: "the provider's rate limit was reached", Upstream: ue, RetryAfter: retryAfter}
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return &proxy.Error{Status: status, Code: CodeUpstreamUnauthorized, Message: "the provider refused the configured credentials", Upstream: ue}
	case status >= 400 && status < 500:
		return &proxy.Error{Status: status, Code: CodeUpstreamRejected, Message: "the provider rejected the request", Upstream: ue}
	default:
		return &proxy.Error{Status: http.StatusBadGateway, Code: CodeUpstreamUnavailable, Message: "the provider answered with a server error", Upstream: ue}
	}
}
