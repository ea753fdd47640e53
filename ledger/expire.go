package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/qrphgate/qrphgate/proxy"
	"github.com/qrphgate/qrphgate/store"
)

// ActionExpired is the action of the event the ledger sends the app when
// a QR expires (expiry_events on). The provider has no such event: a QR
// with no result simply stops being payable.
const ActionExpired = "QRPH_EXPIRED"

// Emitter queues an expiry event for delivery to the app, through the
// same spool, signing and retries as the provider's webhooks.
type Emitter interface {
	// EmitExpired stores ev durably for delivery. Emitting the same event
	// (the same Key and At) again must not deliver it twice while the
	// first is still queued.
	EmitExpired(ctx context.Context, ev ExpiryEvent) error
}

// ExpiryEvent is one QRPH_EXPIRED event.
type ExpiryEvent struct {
	// Key and At identify the event: the same for every attempt to emit
	// it, on any replica (the emitter derives the Webhook-Id from them).
	Key string
	At  time.Time
	// TransactionID and Reference are the expired QR's.
	TransactionID, Reference string
	// Body is the event as the app receives it.
	Body []byte
}

// expiredBody is the QRPH_EXPIRED event's JSON, in the provider's units
// (amount in centavos, like a webhook's).
type expiredBody struct {
	Action          string `json:"action"`
	TransactionID   string `json:"transactionId"`
	ReferenceNumber string `json:"referenceNumber"`
	Amount          int64  `json:"amount"`
	Currency        string `json:"currency"`
	ExpiredAt       string `json:"expiredAt"`
}

// sweepEvery is how often Run looks for QRs to expire: a tenth of the
// grace, between 1 s and 30 s.
func sweepEvery(grace time.Duration) time.Duration {
	return min(max(grace/10, time.Second), 30*time.Second)
}

// Sweep makes one expiry pass: every pending QR whose expiresAt plus the
// grace has passed becomes expired, and, with expiry events on, its
// QRPH_EXPIRED event goes to the emitter. Each change is a compare and
// swap, so of several replicas sweeping one shared ledger exactly one
// expires a QR and emits its event. An event that could not be handed to
// the spool is tried again after a minute, by whichever replica sweeps
// then.
func (l *Ledger) Sweep(ctx context.Context) error {
	s := l.Settings()
	l.obs.Swept()
	if s.ExpiryEvents && s.Emitter == nil {
		l.warnOnce.Do(func() {
			l.log.Warn("expiry_events is on but this config has no modulus_webhook to send them through: " +
				"QRs expire on a replica that has one")
		})
		return nil
	}
	now := l.clock.Now()
	cutoff := now.Add(-s.Grace)
	for {
		recs, err := l.store.Due(ctx, StatusPending, cutoff, sweepBatch)
		if err != nil {
			l.failed("expire", err)
			return err
		}
		expired := 0
		for _, rec := range recs {
			if l.expire(ctx, rec, now, cutoff, s) {
				expired++
			}
		}
		// A full batch may mean more are due; a batch that expired none
		// (all taken by another replica, or unreadable) ends the pass.
		if len(recs) < sweepBatch || expired == 0 || ctx.Err() != nil {
			break
		}
	}
	// Expired QRs whose event is still to be sent (a failure, a replica
	// that died holding it), or whose event is no longer wanted.
	recs, err := l.store.Due(ctx, StatusExpired, now, sweepBatch)
	if err != nil {
		l.failed("emit", err)
		return err
	}
	for _, rec := range recs {
		switch {
		case rec.Status != StatusExpired || rec.Due.IsZero() || rec.Due.After(now):
			// Changed since it was listed (a shared store lists, then reads).
		case s.ExpiryEvents:
			l.emit(ctx, rec, now, s)
		default:
			l.clearDue(ctx, rec)
		}
	}
	return nil
}

// expire moves one pending record, due by cutoff, to expired, and reports
// whether it did.
func (l *Ledger) expire(ctx context.Context, rec store.LedgerRecord, now, cutoff time.Time, s Settings) bool {
	if rec.Status != StatusPending || rec.Due.IsZero() || rec.Due.After(cutoff) {
		return false // changed since it was listed (a shared store lists, then reads)
	}
	e, err := decodeEntry(rec)
	if err != nil {
		l.log.Error("an unreadable ledger entry is left pending", proxy.LogString("transaction_id", rec.ID), proxy.LogString("error", err.Error()))
		return false
	}
	e.ExpiredAt = now.UTC()
	next := rec
	next.Status, next.Data, next.Due = StatusExpired, e.encode(), time.Time{}
	if s.ExpiryEvents {
		next.Due = now.Add(emitLease) // held by this replica while it emits
	}
	next, err = l.store.Update(ctx, next)
	switch {
	case errors.Is(err, store.ErrConflict), errors.Is(err, store.ErrRecordNotFound):
		return false // a result came, or another replica expired it
	case err != nil:
		l.failed("expire", err, proxy.LogString("transaction_id", rec.ID))
		return false
	}
	l.obs.Transition(StatusExpired)
	l.log.Info("QR expired without a result", proxy.LogString("transaction_id", rec.ID), proxy.LogString("reference", rec.Reference),
		zap.Time("expires_at", e.ExpiresAt))
	if s.ExpiryEvents {
		l.emit(ctx, next, now, s)
	}
	return true
}

// emit hands an expired record's event to the emitter, claiming it first
// when its lease has passed, and marks it sent.
func (l *Ledger) emit(ctx context.Context, rec store.LedgerRecord, now time.Time, s Settings) {
	log := l.log.WithLazy(proxy.LogString("transaction_id", rec.ID), proxy.LogString("reference", rec.Reference))
	if !rec.Due.After(now) { // nobody holds it: claim it
		rec.Due = now.Add(emitLease)
		claimed, err := l.store.Update(ctx, rec)
		if err != nil {
			if !errors.Is(err, store.ErrConflict) && !errors.Is(err, store.ErrRecordNotFound) {
				l.failed("emit", err, proxy.LogString("transaction_id", rec.ID))
			}
			return
		}
		rec = claimed
	}
	e, err := decodeEntry(rec)
	if err != nil {
		log.Error("an unreadable ledger entry: no expiry event", proxy.LogString("error", err.Error()))
		return
	}
	body, _ := json.Marshal(expiredBody{
		Action: ActionExpired, TransactionID: rec.ID, ReferenceNumber: rec.Reference,
		Amount: e.Amount, Currency: e.Currency, ExpiredAt: e.ExpiredAt.UTC().Format(time.RFC3339),
	})
	ev := ExpiryEvent{Key: "expired:" + rec.ID, At: e.ExpiredAt, TransactionID: rec.ID, Reference: rec.Reference, Body: body}
	if err := s.Emitter.EmitExpired(ctx, ev); err != nil {
		l.obs.ExpiryEvent("failed")
		log.Error("the QRPH_EXPIRED event could not be queued; it is tried again in a minute", proxy.LogString("error", err.Error()))
		return
	}
	l.obs.ExpiryEvent("emitted")
	e.ExpiryEventAt = now.UTC()
	rec.Due, rec.Data = time.Time{}, e.encode()
	if _, err := l.store.Update(ctx, rec); err != nil && !errors.Is(err, store.ErrConflict) && !errors.Is(err, store.ErrRecordNotFound) {
		// The event is queued; it may be queued again after the lease,
		// under the same Webhook-Id.
		l.failed("emit", err, proxy.LogString("transaction_id", rec.ID))
	}
}

// clearDue drops an expired record's pending event (expiry events were
// turned off meanwhile).
func (l *Ledger) clearDue(ctx context.Context, rec store.LedgerRecord) {
	rec.Due = time.Time{}
	if _, err := l.store.Update(ctx, rec); err != nil && !errors.Is(err, store.ErrConflict) && !errors.Is(err, store.ErrRecordNotFound) {
		l.failed("emit", err, proxy.LogString("transaction_id", rec.ID))
	}
}
