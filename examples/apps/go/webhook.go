package main

import (
	"encoding/json"
	"io"
	"log"
	"net/http"
	"strings"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// maxBody is qrphgate's own limit on a webhook body (max_body 64KiB).
const maxBody = 64 << 10

// newVerifier checks Webhook-Signature with the official Standard Webhooks
// library, which also refuses timestamps more than 5 minutes off. A whsec_
// secret is base64; any other string is used as its bytes, as qrphgate's
// sign_secret does.
func newVerifier(secret string) (func([]byte, http.Header) error, error) {
	var wh *standardwebhooks.Webhook
	var err error
	if strings.HasPrefix(secret, "whsec_") {
		wh, err = standardwebhooks.NewWebhook(secret)
	} else {
		wh, err = standardwebhooks.NewWebhookRaw([]byte(secret))
	}
	if err != nil {
		return nil, err
	}
	return wh.Verify, nil
}

// webhook is POST /payments/modulus, qrphgate's forward_to. The signature
// is checked on the raw body bytes, before anything parses them; only then
// is the Webhook-Id recorded, so a forged delivery cannot burn a real id.
func (a *app) webhook(w http.ResponseWriter, r *http.Request) {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		writeJSON(w, http.StatusRequestEntityTooLarge, map[string]any{"error": "body too large"})
		return
	}
	if err := a.verify(raw, r.Header); err != nil {
		log.Printf("webhook refused: %v", err)
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "invalid signature"})
		return
	}
	var event struct {
		Action                  string `json:"action"`
		ReferenceNumber         string `json:"referenceNumber"`
		MerchantReferenceNumber string `json:"merchantReferenceNumber"`
	}
	if err := json.Unmarshal(raw, &event); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "body is not a JSON object"})
		return
	}
	ref := event.ReferenceNumber
	if ref == "" {
		ref = event.MerchantReferenceNumber
	}
	id := r.Header.Get("Webhook-Id")
	switch a.orders.apply(id, event.Action, ref) {
	case duplicate:
		log.Printf("webhook %s: already applied", id)
		writeJSON(w, http.StatusOK, map[string]any{"received": true, "duplicate": true})
	case unknownOrder:
		// Acknowledge: retrying would not make the order appear.
		log.Printf("webhook %s: %s for unknown order %q", id, event.Action, ref)
		writeJSON(w, http.StatusOK, map[string]any{"received": true, "unknownOrder": true})
	default:
		log.Printf("webhook %s: %s for order %s", id, event.Action, ref)
		writeJSON(w, http.StatusOK, map[string]any{"received": true})
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
