package ledger

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/qrphgate/qrphgate/proxy"
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
// here (the QR is answered regardless) and returned. It returns within the
// call bound (see bounded) even if the store hangs.
//
// Its result may have come first: the record landed after the webhook
// (a slow store; another replica took the webhook), which the ledger then
// kept as a result matching no QR. Once the QR is stored, such a result is
// looked for, under the QR's id or its reference, and given to it
// (early.go), so that the QR does not wait for a result it has, and expire.
func (l *Ledger) Record(ctx context.Context, qr QR) error {
	if qr.CreatedAt.IsZero() {
		qr.CreatedAt = l.clock.Now()
	}
	_, err := bounded(l, ctx, "record", []zap.Field{proxy.LogString("transaction_id", qr.ID), proxy.LogString("reference", qr.Reference)},
		func(ctx context.Context) (struct{}, error) { return struct{}{}, l.record(ctx, qr) })
	return err
}

func (l *Ledger) record(ctx context.Context, qr QR) error {
	e := entry{Amount: qr.Amount, Currency: qr.Currency, ExpiresAt: qr.ExpiresAt}
	rec := store.LedgerRecord{
		ID: qr.ID, Merchant: qr.ActivationCode, Reference: qr.Reference, Status: StatusPending,
		Created: qr.CreatedAt, Due: qr.ExpiresAt, Data: e.encode(),
	}
	log := l.log.WithLazy(proxy.LogString("transaction_id", qr.ID), proxy.LogString("reference", qr.Reference))
	for try := 0; try < maxTries; try++ {
		stored, err := l.store.Insert(ctx, rec)
		if err == nil {
			l.obs.Transition(StatusPending)
			l.adoptEarlyResult(ctx, stored)
			return nil
		}
		if !errors.Is(err, store.ErrRecordExists) {
			return err
		}
		merged, err := l.mergeEarlyResult(ctx, log, rec)
		switch {
		case errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrRecordNotFound) || errors.Is(err, store.ErrRecordExists):
			continue // it changed meanwhile: look again
		case err != nil:
			return err
		case !merged:
			// The provider answered an id the ledger holds for a QR
			// already (a reused id): keep what is there.
			log.Warn("a created QR's transaction id is in the ledger already; the entry is kept as it is")
		}
		return nil
	}
	return errors.New("ledger: the transaction kept changing under a created QR")
}
