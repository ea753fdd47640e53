package ledger

import (
	"context"
	"errors"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/qrphgate/qrphgate/policy"
	"github.com/qrphgate/qrphgate/proxy"
	"github.com/qrphgate/qrphgate/store"
)

// Notification is what a verified webhook says about a payment.
type Notification struct {
	// EventID is the gateway's event id (Webhook-Id).
	EventID string
	// ActivationCode is the webhook's activation-code header ("" without).
	ActivationCode string
	// Action is the payload's action or status.
	Action string
	// TransactionID is the payload's transactionId (or id); Reference its
	// referenceNumber (or merchantReferenceNumber). Either may be empty.
	TransactionID, Reference string
	// Amount is the stated amount in centavos, when HasAmount.
	Amount    int64
	HasAmount bool
	// Currency is the stated currency ("" when none).
	Currency string
	// ReceivedAt is when the webhook was accepted.
	ReceivedAt time.Time
}

// currencyCode is what a QR's currency can be.
var currencyCode = regexp.MustCompile(`^[A-Z]{3}$`)

// outcome maps a webhook's action (or status) to the status it gives its
// QR: the documented QRPH_SUCCESS and QRPH_DECLINED, the security page's
// SUCCESS and DECLINED, and the simulate call's declined use cases. ""
// means unknown: the result is recorded and the status left alone.
func outcome(action string) string {
	switch strings.ToUpper(action) {
	case "QRPH_SUCCESS", "SUCCESS":
		return StatusPaid
	case "QRPH_DECLINED", "DECLINED", "MISSING_DESTINATION_ACCOUNT", "MISSING_PARTNER_REVENUE_ACCOUNT", "UNSUPPORTED_TRANSFER_TYPE":
		return StatusDeclined
	}
	return ""
}

// Reconcile records a webhook's result against its QR and returns the
// transaction's reconciliation flags, which go with the delivery. The QR
// is found by transaction id, else by reference (the activation-code
// header, when it names a QR's merchant, narrows the choice; a QR still
// waiting for its result comes first). The checks: a stated amount or
// currency other than the QR's, no QR at all, a result after the QR
// expired. A repeated result (the provider's retry, a second copy) changes
// nothing and gets the same flags. A failure is logged and counted here
// and returned with no flags: the webhook is delivered regardless. It
// returns within the call bound (see bounded) even if the store hangs.
func (l *Ledger) Reconcile(ctx context.Context, n Notification) ([]string, error) {
	if n.ReceivedAt.IsZero() {
		n.ReceivedAt = l.clock.Now()
	}
	return bounded(l, ctx, "reconcile", []zap.Field{proxy.LogString("event_id", n.EventID)},
		func(ctx context.Context) ([]string, error) { return l.reconcile(ctx, n) })
}

func (l *Ledger) reconcile(ctx context.Context, n Notification) ([]string, error) {
	log := l.resultLog(n)
	for try := 0; try < maxTries; try++ {
		rec, found, err := l.match(ctx, n)
		if err != nil {
			return nil, err
		}
		var flags []string
		if found {
			flags, err = l.settle(ctx, log, rec, n, false)
		} else {
			flags, err = l.orphan(ctx, log, n)
		}
		if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrRecordExists) || errors.Is(err, store.ErrRecordNotFound) {
			continue // someone changed it meanwhile: look again
		}
		if err != nil {
			return nil, err
		}
		return flags, nil
	}
	return nil, errors.New("ledger: the transaction kept changing under a result")
}

// match finds the record a result is about.
func (l *Ledger) match(ctx context.Context, n Notification) (store.LedgerRecord, bool, error) {
	if n.TransactionID != "" {
		rec, err := l.store.Get(ctx, n.TransactionID)
		if err == nil {
			return rec, true, nil
		}
		if !errors.Is(err, store.ErrRecordNotFound) {
			return store.LedgerRecord{}, false, err
		}
	}
	if n.Reference == "" {
		return store.LedgerRecord{}, false, nil
	}
	recs, err := l.store.ByReference(ctx, n.Reference, 16)
	if err != nil || len(recs) == 0 {
		return store.LedgerRecord{}, false, err
	}
	if n.ActivationCode != "" {
		var same []store.LedgerRecord
		for _, r := range recs {
			if r.Merchant == n.ActivationCode {
				same = append(same, r)
			}
		}
		if len(same) > 0 {
			recs = same
		}
	}
	for _, r := range recs { // newest first: the newest still waiting wins
		if e, err := decodeEntry(r); err == nil && e.Result == nil {
			return r, true, nil
		}
	}
	return recs[0], true, nil
}

// settle records n on its QR's record. counted is true when n's status
// was counted already (it was stored as unmatched before its QR's record
// landed: see early.go), so that the transition is not counted twice.
func (l *Ledger) settle(ctx context.Context, log *zap.Logger, rec store.LedgerRecord, n Notification, counted bool) ([]string, error) {
	e, err := decodeEntry(rec)
	if err != nil {
		return nil, err
	}
	log = log.WithLazy(proxy.LogString("transaction_id", rec.ID), proxy.LogString("reference", rec.Reference))
	if e.Result != nil {
		if !strings.EqualFold(e.Result.Action, n.Action) {
			log.Warn("a second, different result for a transaction that has one; the ledger keeps the first",
				proxy.LogString("first_action", e.Result.Action))
		}
		return e.Flags, nil
	}
	var found []string
	if late := rec.Status == StatusExpired ||
		(!e.ExpiresAt.IsZero() && !n.ReceivedAt.Before(e.ExpiresAt.Add(l.Settings().Grace))); late {
		found = append(found, FlagLateResult)
	}
	if n.HasAmount && n.Amount != e.Amount {
		found = append(found, FlagAmountMismatch)
	}
	if n.Currency != "" && !strings.EqualFold(n.Currency, e.Currency) {
		found = append(found, FlagCurrencyMismatch)
	}
	e.Result = resultOf(n)
	added := e.addFlags(found...)
	next := rec
	if st := outcome(n.Action); st != "" {
		next.Status = st
	}
	next.Due = time.Time{} // settled: neither expiry nor its event is due
	next.Data = e.encode()
	if _, err := l.store.Update(ctx, next); err != nil {
		return nil, err
	}
	if next.Status != rec.Status && !counted {
		l.obs.Transition(next.Status)
	}
	l.report(log, next.Status, n, added, e)
	return e.Flags, nil
}

// orphan records a result that matches no QR, flagged unknown_reference.
// Its QR's record may be landing at this very moment (a slow Record, on
// this replica or another): once the result is stored, the QR is looked
// for again, and when it is there now, the result goes to it (early.go)
// and the QR's flags are returned instead.
func (l *Ledger) orphan(ctx context.Context, log *zap.Logger, n Notification) ([]string, error) {
	id := n.TransactionID
	if id == "" {
		id = "unmatched-" + n.EventID
	}
	// The transaction takes what the webhook stated, when it is usable as
	// a QR's (a result keeps it as stated either way).
	e := entry{Result: resultOf(n), Flags: []string{FlagUnknownReference}}
	if c := strings.ToUpper(n.Currency); currencyCode.MatchString(c) {
		e.Currency = c
	}
	if n.HasAmount && n.Amount >= 0 {
		e.Amount = n.Amount
	}
	status := outcome(n.Action)
	if status == "" {
		status = StatusPending
	}
	stored, err := l.store.Insert(ctx, store.LedgerRecord{
		ID: id, Merchant: n.ActivationCode, Reference: n.Reference, Status: status, Created: n.ReceivedAt, Data: e.encode(),
	})
	if err != nil {
		return nil, err
	}
	l.obs.Transition(status)
	if flags, adopted := l.adoptIntoLateQR(ctx, stored, n); adopted {
		return flags, nil
	}
	l.report(log.WithLazy(proxy.LogString("transaction_id", id), proxy.LogString("reference", n.Reference)), status, n, e.Flags, e)
	return e.Flags, nil
}

// report logs a recorded result: an error line when it raised flags (an
// operator must look), info otherwise.
func (l *Ledger) report(log *zap.Logger, status string, n Notification, added []string, e entry) {
	for _, f := range added {
		l.obs.Flagged(f)
	}
	if outcome(n.Action) == "" {
		log.Warn("a result with an unknown action; the transaction's status is left as it was")
	}
	if len(added) == 0 {
		log.Info("payment result recorded", zap.String("status", status))
		return
	}
	fields := []zap.Field{zap.String("status", status), zap.Strings("flags", added), zap.Strings("all_flags", e.Flags)}
	if n.HasAmount {
		fields = append(fields, zap.String("stated_amount", policy.Centavos(n.Amount).String()))
	}
	if n.Currency != "" {
		fields = append(fields, proxy.LogString("stated_currency", n.Currency))
	}
	if !slices.Contains(added, FlagUnknownReference) {
		fields = append(fields, zap.String("qr_amount", policy.Centavos(e.Amount).String()), proxy.LogString("qr_currency", e.Currency))
	}
	log.Error("payment result flagged for reconciliation; delivered to the app with Modulus-Reconciliation", fields...)
}

// resultLog is the logger of the lines about result n.
func (l *Ledger) resultLog(n Notification) *zap.Logger {
	return l.log.WithLazy(proxy.LogString("event_id", n.EventID), proxy.LogString("action", n.Action))
}

func resultOf(n Notification) *Result {
	r := &Result{Action: n.Action, TransactionID: n.TransactionID, Currency: n.Currency, ReceivedAt: n.ReceivedAt.UTC(), EventID: n.EventID}
	if n.HasAmount {
		a := n.Amount
		r.Amount = &a
	}
	return r
}
