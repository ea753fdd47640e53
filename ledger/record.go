package ledger

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/qrphgate/qrphgate/store"
)

// QR is a QR the provider created, as modulus_api answered it.
type QR struct {
	// ID is the provider's transaction id.
	ID string
	// ActivationCode is the merchant the QR was created for.
	ActivationCode string
	// Reference is the merchantReferenceNumber.
	Reference string
	// Amount is in centavos.
	Amount   int64
	Currency string
	// CreatedAt is when the gateway recorded it; ExpiresAt create-QR's
	// expiresAt.
	CreatedAt, ExpiresAt time.Time
}

// Record adds a created QR as pending. A failure is logged and counted
// here (the QR is answered regardless) and returned.
func (l *Ledger) Record(ctx context.Context, qr QR) error {
	if qr.CreatedAt.IsZero() {
		qr.CreatedAt = l.clock.Now()
	}
	e := entry{Amount: qr.Amount, Currency: qr.Currency, ExpiresAt: qr.ExpiresAt}
	_, err := l.store.Insert(ctx, store.LedgerRecord{
		ID: qr.ID, Merchant: qr.ActivationCode, Reference: qr.Reference, Status: StatusPending,
		Created: qr.CreatedAt, Due: qr.ExpiresAt, Data: e.encode(),
	})
	switch {
	case errors.Is(err, store.ErrRecordExists):
		// The provider answered an id the ledger holds already (a result
		// that came first, or a reused id): keep what is there.
		l.log.Warn("a created QR's transaction id is in the ledger already; the entry is kept as it is",
			zap.String("transaction_id", qr.ID), zap.String("reference", qr.Reference))
		return nil
	case err != nil:
		l.failed("record", err, zap.String("transaction_id", qr.ID), zap.String("reference", qr.Reference))
		return err
	}
	l.obs.Transition(StatusPending)
	return nil
}
