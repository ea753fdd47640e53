package inbound

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/qrphgate/qrphgate/policy"
	"github.com/qrphgate/qrphgate/store"
)

// Ledger is the payments ledger as modulus_webhook sees it; caddymodule
// wires the ledger package to it. It logs and counts its own failures: a
// webhook is spooled and delivered whatever it says.
type Ledger interface {
	// Reconcile records a payment result against its QR and returns the
	// reconciliation flags that go with the delivery (none on failure).
	Reconcile(ctx context.Context, r PaymentResult) ([]string, error)
}

// PaymentResult is what a verified webhook says about a payment.
type PaymentResult struct {
	// EventID is the event's Webhook-Id.
	EventID string
	// ActivationCode is the activation-code header ("" without one).
	ActivationCode string
	// Action is the payload's action (or status).
	Action string
	// TransactionID is the payload's transactionId (or id); Reference its
	// referenceNumber (or merchantReferenceNumber). Either may be "".
	TransactionID, Reference string
	// Amount is the stated amount in centavos, when HasAmount: a JSON
	// integer (the provider's unit), or a "500.00" string in pesos.
	Amount    int64
	HasAmount bool
	// Currency is the stated currency (three ASCII letters), "" when none.
	Currency string
	// ReceivedAt is when the webhook was accepted.
	ReceivedAt time.Time
}

// ledgerTimeout bounds the ledger's part of answering a webhook (the
// provider waits at most 10 s for the answer).
const ledgerTimeout = 2 * time.Second

// reconcile asks the ledger about a webhook about to be spooled and
// returns its flags as the delivery header's value.
func (in *Handler) reconcile(ctx context.Context, log *zap.Logger, ev store.SpoolEvent, p Payload, plaintext []byte) string {
	if in.cfg.Ledger == nil {
		return ""
	}
	r := resultOf(plaintext, p)
	r.EventID, r.ActivationCode, r.ReceivedAt = ev.ID, ev.ActivationCode, ev.Received
	ctx, cancel := context.WithTimeout(ctx, ledgerTimeout)
	defer cancel()
	flags, err := in.cfg.Ledger.Reconcile(ctx, r)
	if err != nil {
		log.Debug("webhook not reconciled: the payments ledger failed (logged by it)", zap.Error(err))
	}
	return strings.Join(flags, ",")
}

// resultOf reads what the ledger checks from a decrypted payload that
// ParsePayload accepted: the reference (referenceNumber or
// merchantReferenceNumber, never the transaction id), the amount and the
// currency. A member of an unexpected type, or a reference that breaks the
// rule of every payload text (checkFieldText: bounded, no control
// characters), is left out, not an error: the webhook is delivered
// regardless.
func resultOf(plaintext []byte, p Payload) PaymentResult {
	r := PaymentResult{Action: p.Action, TransactionID: p.TransactionID}
	m := make(map[string]json.RawMessage, 8) // exact member names
	if policy.WalkObject(plaintext, func(name string, v json.RawMessage) error { m[name] = v; return nil }) != nil {
		return r
	}
	str := func(name string) string {
		var s string
		if raw, ok := m[name]; ok && len(raw) > 0 && raw[0] == '"' && json.Unmarshal(raw, &s) == nil && len(s) <= maxFieldLen {
			return s
		}
		return ""
	}
	for _, name := range []string{"referenceNumber", "merchantReferenceNumber"} {
		if ref := str(name); checkFieldText(ref) == nil {
			r.Reference = ref
			break
		}
	}
	if c := str("currency"); isCurrencyCode(c) {
		r.Currency = c
	}
	if raw := m["amount"]; isJSONInteger(raw) {
		if n, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
			r.Amount, r.HasAmount = n, true
		}
	} else if s := str("amount"); s != "" {
		if c, err := policy.ParseAmount(s); err == nil {
			r.Amount, r.HasAmount = int64(c), true
		}
	}
	return r
}

// isCurrencyCode reports whether s can be an ISO 4217 code: three ASCII
// letters (either case: the check against the QR ignores it).
func isCurrencyCode(s string) bool {
	if len(s) != 3 {
		return false
	}
	for i := 0; i < 3; i++ {
		if c := s[i] | 0x20; c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}
