package ledger

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/qrphgate/qrphgate/policy"
	"github.com/qrphgate/qrphgate/store"
)

// Transaction is one QR's life as the ledger knows it.
type Transaction struct {
	// ID is the provider's transaction id (create-QR's id). A result that
	// matched no QR is kept under its own transaction id, or
	// "unmatched-" and its event id when it has none.
	ID string `json:"id"`
	// ActivationCode is the merchant: the QR's activation code, or the
	// activation-code header of an unmatched result.
	ActivationCode string `json:"activationCode,omitempty"`
	// Reference is the merchant's merchantReferenceNumber.
	Reference string `json:"merchantReferenceNumber"`
	// Amount is the QR's amount in centavos (an unmatched result's own).
	Amount int64 `json:"-"`
	// AmountText is Amount as create-QR takes it ("500.00").
	AmountText string    `json:"amount"`
	Currency   string    `json:"currency"`
	Status     string    `json:"status"`
	CreatedAt  time.Time `json:"createdAt"`
	// ExpiresAt is when the QR stops being payable (zero for an unmatched
	// result); ExpiredAt when the ledger marked it expired.
	ExpiresAt time.Time `json:"expiresAt,omitzero"`
	ExpiredAt time.Time `json:"expiredAt,omitzero"`
	// Result is what the provider's webhook said, once one came.
	Result *Result `json:"result,omitempty"`
	// Flags are the reconciliation flags raised on it.
	Flags []string `json:"flags,omitempty"`
	// ExpiryEventAt is when its QRPH_EXPIRED event went to the spool.
	ExpiryEventAt time.Time `json:"expiryEventAt,omitzero"`
}

// Result is a webhook's statement about a transaction, as it stated it.
type Result struct {
	Action string `json:"action"`
	// TransactionID is the webhook's transactionId (or id).
	TransactionID string `json:"transactionId,omitempty"`
	// Amount is in centavos, as the webhook stated it; nil when it stated
	// none.
	Amount     *int64    `json:"amount,omitempty"`
	Currency   string    `json:"currency,omitempty"`
	ReceivedAt time.Time `json:"receivedAt"`
	// EventID is the delivery's Webhook-Id.
	EventID string `json:"eventId,omitempty"`
}

// Document is what the app gets for GET /v1/pay/qr/{id}: the transaction
// without what only the operator sees.
type Document struct {
	ID                      string     `json:"id"`
	MerchantReferenceNumber string     `json:"merchantReferenceNumber"`
	Amount                  string     `json:"amount"`
	Currency                string     `json:"currency"`
	Status                  string     `json:"status"`
	CreatedAt               time.Time  `json:"createdAt"`
	ExpiresAt               *time.Time `json:"expiresAt,omitempty"`
	Result                  *AppResult `json:"result,omitempty"`
	Flags                   []string   `json:"flags,omitempty"`
}

// AppResult is a Result as the app sees it.
type AppResult struct {
	Action        string    `json:"action"`
	TransactionID string    `json:"transactionId,omitempty"`
	Amount        *int64    `json:"amount,omitempty"`
	Currency      string    `json:"currency,omitempty"`
	ReceivedAt    time.Time `json:"receivedAt"`
}

// Document returns the app's view of t.
func (t Transaction) Document() Document {
	d := Document{
		ID: t.ID, MerchantReferenceNumber: t.Reference, Amount: t.AmountText, Currency: t.Currency,
		Status: t.Status, CreatedAt: t.CreatedAt, Flags: t.Flags,
	}
	if !t.ExpiresAt.IsZero() {
		exp := t.ExpiresAt
		d.ExpiresAt = &exp
	}
	if r := t.Result; r != nil {
		d.Result = &AppResult{Action: r.Action, TransactionID: r.TransactionID, Amount: r.Amount, Currency: r.Currency, ReceivedAt: r.ReceivedAt}
	}
	return d
}

// entry is what the store keeps as a record's Data; the record itself
// holds the id, merchant, reference, status and creation time.
type entry struct {
	Amount        int64     `json:"amount"`
	Currency      string    `json:"currency"`
	ExpiresAt     time.Time `json:"expiresAt,omitzero"`
	ExpiredAt     time.Time `json:"expiredAt,omitzero"`
	Result        *Result   `json:"result,omitempty"`
	Flags         []string  `json:"flags,omitempty"`
	ExpiryEventAt time.Time `json:"expiryEventAt,omitzero"`
}

func (e *entry) encode() []byte {
	b, _ := json.Marshal(e) // plain strings, numbers and times: cannot fail
	return b
}

func decodeEntry(rec store.LedgerRecord) (entry, error) {
	var e entry
	if err := json.Unmarshal(rec.Data, &e); err != nil {
		return entry{}, fmt.Errorf("ledger: record %s is unreadable: %w", rec.ID, err)
	}
	return e, nil
}

// addFlags adds the flags e does not have yet and returns those.
func (e *entry) addFlags(flags ...string) []string {
	var added []string
	for _, f := range flags {
		if !slices.Contains(e.Flags, f) {
			e.Flags = append(e.Flags, f)
			added = append(added, f)
		}
	}
	return added
}

// transaction builds the view of a stored record.
func transaction(rec store.LedgerRecord) (Transaction, error) {
	e, err := decodeEntry(rec)
	if err != nil {
		return Transaction{}, err
	}
	return Transaction{
		ID: rec.ID, ActivationCode: rec.Merchant, Reference: rec.Reference,
		Amount: e.Amount, AmountText: policy.Centavos(e.Amount).String(), Currency: e.Currency,
		Status: rec.Status, CreatedAt: rec.Created, ExpiresAt: e.ExpiresAt, ExpiredAt: e.ExpiredAt,
		Result: e.Result, Flags: e.Flags, ExpiryEventAt: e.ExpiryEventAt,
	}, nil
}
