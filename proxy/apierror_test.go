package proxy

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/qrphgate/qrphgate/policy"
)

func TestWriteError(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		status     int
		code       string
		field      string
		retryAfter string
	}{
		{"validation", &policy.Error{Code: policy.CodeInvalidAmount, Field: "amount", Message: "bad"}, 400, "invalid_amount", "amount", ""},
		{"wrapped validation", fmt.Errorf("decoding: %w", &policy.Error{Code: policy.CodeUnknownField, Field: "tip", Message: "x"}), 400, "unknown_field", "tip", ""},
		{"api error with retry", &Error{Status: 429, Code: "rate_limited", Message: "queue full", RetryAfter: 1500 * time.Millisecond}, 429, "rate_limited", "", "2"},
		{"unknown error hides its text", errors.New("dial tcp: secret detail"), 500, CodeInternal, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			WriteError(rec, tc.err)
			if rec.Code != tc.status || rec.Header().Get("Content-Type") != "application/json" {
				t.Fatalf("status %d type %q", rec.Code, rec.Header().Get("Content-Type"))
			}
			if got := rec.Header().Get("Retry-After"); got != tc.retryAfter {
				t.Fatalf("Retry-After %q, want %q", got, tc.retryAfter)
			}
			var body struct {
				Error map[string]any `json:"error"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatal(err)
			}
			if body.Error["code"] != tc.code || (tc.field != "" && body.Error["field"] != tc.field) || body.Error["message"] == "" {
				t.Fatalf("body %s", rec.Body.String())
			}
			if strings.Contains(rec.Body.String(), "secret detail") {
				t.Fatal("an internal error's cause was sent to the client")
			}
		})
	}
}

func TestWriteErrorKeepsUpstreamObject(t *testing.T) {
	rec := httptest.NewRecorder()
	WriteError(rec, &Error{Status: http.StatusUnauthorized, Code: "upstream_rejected", Message: "provider refused the credentials",
		Upstream: &UpstreamError{Status: 401, Code: "10000013", Error: "Invalid API Key", ReferenceNumber: "338e2710"}})
	want := `"upstream":{"status":401,"code":"10000013","error":"Invalid API Key","referenceNumber":"338e2710"}`
	if !strings.Contains(rec.Body.String(), want) {
		t.Fatalf("body %s lacks %s", rec.Body.String(), want)
	}
}
