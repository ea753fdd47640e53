package ledger

import (
	"context"
	"errors"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/qrphgate/qrphgate/proxy"
	"github.com/qrphgate/qrphgate/store"
)

// A result can reach the ledger before its QR does: the QR's record is
// written while the QR is answered, and a slow store (or a replica that
// recorded it later than another received the webhook) lets the webhook
// win. The result is then kept as unmatched (flagged unknown_reference),
// and each side looks for the other once it is stored:
//
//   - Record, after its Insert, looks for an unmatched result under the
//     QR's reference (adoptEarlyResult); when its Insert finds the QR's id
//     taken by an unmatched result (the webhook named the QR's id), it
//     merges the two (mergeEarlyResult);
//   - Reconcile, after storing an unmatched result, looks for its QR again
//     (adoptIntoLateQR).
//
// Both look after their own write, so whichever of the two writes lands
// second sees the other. Adopting is idempotent (a QR keeps its first
// result; deleting an unmatched record twice is harmless), so both may.

// earlyWindow is how long before its QR was recorded an unmatched result
// may have been received and still be the QR's: clocks of replicas differ
// a little, and a result never precedes its QR's creation by more. An
// older unmatched result with the same reference is another payment's.
const earlyWindow = time.Minute

// isUnmatched reports whether e is a result kept without its QR: it has a
// result, the unknown_reference flag, and no expiry of its own.
func isUnmatched(e entry) bool {
	return e.Result != nil && e.ExpiresAt.IsZero() && slices.Contains(e.Flags, FlagUnknownReference)
}

// notification is the result kept in the unmatched record rec, as it came.
func (r *Result) notification(rec store.LedgerRecord) Notification {
	n := Notification{
		EventID: r.EventID, ActivationCode: rec.Merchant, Action: r.Action, TransactionID: r.TransactionID,
		Reference: rec.Reference, Currency: r.Currency, ReceivedAt: r.ReceivedAt,
	}
	if r.Amount != nil {
		n.Amount, n.HasAmount = *r.Amount, true
	}
	return n
}

// adoptEarlyResult gives the just recorded QR qr the unmatched result
// received for its reference since shortly before it was created (of its
// merchant first; the oldest, which came first), if any. Failures are
// logged and counted: the QR stays pending and the result unmatched.
func (l *Ledger) adoptEarlyResult(ctx context.Context, qr store.LedgerRecord) {
	if qr.Reference == "" {
		return
	}
	recs, err := l.store.ByReference(ctx, qr.Reference, 16)
	if err != nil {
		l.failed("record", err, proxy.LogString("transaction_id", qr.ID), proxy.LogString("reference", qr.Reference))
		return
	}
	var pick *store.LedgerRecord
	var picked entry
	for i := len(recs) - 1; i >= 0; i-- { // oldest first
		r := recs[i]
		e, err := decodeEntry(r)
		if err != nil || r.ID == qr.ID || !isUnmatched(e) || e.Result.ReceivedAt.Before(qr.Created.Add(-earlyWindow)) {
			continue
		}
		if pick == nil || (pick.Merchant != qr.Merchant && r.Merchant == qr.Merchant) {
			pick, picked = &recs[i], e
		}
	}
	if pick == nil {
		return
	}
	if _, err := l.adopt(ctx, qr.ID, *pick, picked.Result.notification(*pick)); err != nil {
		l.failed("record", err, proxy.LogString("transaction_id", qr.ID), proxy.LogString("reference", qr.Reference))
	}
}

// mergeEarlyResult handles a QR whose id is taken: when the record there is
// an unmatched result (the webhook named the QR's id and came first), the
// QR takes its place with that result; merged is false for any other
// record (kept as it is). Store errors, conflicts included, are returned
// for the caller to look again.
func (l *Ledger) mergeEarlyResult(ctx context.Context, log *zap.Logger, qr store.LedgerRecord) (merged bool, err error) {
	cur, err := l.store.Get(ctx, qr.ID)
	if err != nil {
		return false, err
	}
	e, err := decodeEntry(cur)
	if err != nil || !isUnmatched(e) {
		return false, err
	}
	n := e.Result.notification(cur)
	if cur.Merchant == qr.Merchant && cur.Reference == qr.Reference {
		// The same indexed fields: the record becomes the QR, settled
		// by its result, in one compare and swap.
		qr.Version = cur.Version
	} else {
		// A merchant or reference fixed at insert differs (the webhook
		// stated its own): the QR replaces the record, then takes its
		// result.
		if err := l.store.Delete(ctx, cur.ID, cur.Version); err != nil {
			return false, err
		}
		if qr, err = l.store.Insert(ctx, qr); err != nil {
			return false, err // ErrRecordExists: written meanwhile, look again
		}
	}
	if _, err := l.settle(ctx, l.resultLog(n), qr, n, true); err != nil {
		return false, err
	}
	l.obs.Transition(StatusPending)
	log.Info("a result that came before its QR's ledger record is matched to it now", proxy.LogString("event_id", n.EventID))
	return true, nil
}

// adoptIntoLateQR, for an unmatched result just stored as rec, looks for
// its QR again (it may have landed meanwhile) and, when it is there, gives
// it the result; adopted says whether it did, and flags are then the QR's.
func (l *Ledger) adoptIntoLateQR(ctx context.Context, rec store.LedgerRecord, n Notification) (flags []string, adopted bool) {
	qr, found, err := l.lateQR(ctx, n, rec.ID)
	if err != nil || !found {
		return nil, false
	}
	flags, err = l.adopt(ctx, qr.ID, rec, n)
	if err != nil {
		l.failed("reconcile", err, proxy.LogString("event_id", n.EventID))
		return nil, false
	}
	return flags, true
}

// lateQR finds the QR that n is about among records stored since n was
// looked for: a QR (not an unmatched result, not the record self) with
// n's transaction id, else the newest with its reference still waiting for
// a result (of n's merchant first), created before n was received (give
// or take earlyWindow).
func (l *Ledger) lateQR(ctx context.Context, n Notification, self string) (store.LedgerRecord, bool, error) {
	if n.TransactionID != "" && n.TransactionID != self {
		rec, err := l.store.Get(ctx, n.TransactionID)
		if err == nil {
			if e, err := decodeEntry(rec); err == nil && !isUnmatched(e) {
				return rec, true, nil
			}
		} else if !errors.Is(err, store.ErrRecordNotFound) {
			return store.LedgerRecord{}, false, err
		}
	}
	if n.Reference == "" {
		return store.LedgerRecord{}, false, nil
	}
	recs, err := l.store.ByReference(ctx, n.Reference, 16)
	if err != nil {
		return store.LedgerRecord{}, false, err
	}
	var pick *store.LedgerRecord
	for i, r := range recs { // newest first
		e, err := decodeEntry(r)
		if err != nil || r.ID == self || e.Result != nil || r.Created.After(n.ReceivedAt.Add(earlyWindow)) {
			continue
		}
		if pick == nil || (pick.Merchant != n.ActivationCode && r.Merchant == n.ActivationCode) {
			pick = &recs[i]
		}
	}
	if pick == nil {
		return store.LedgerRecord{}, false, nil
	}
	return *pick, true, nil
}

// adopt records the result n, kept as the unmatched record unmatched, on
// the QR qrID, then deletes the unmatched record. The status n gave was
// counted when it was stored: the QR's change is not counted again.
func (l *Ledger) adopt(ctx context.Context, qrID string, unmatched store.LedgerRecord, n Notification) ([]string, error) {
	var flags []string
	for try := 0; ; try++ {
		if try == maxTries {
			return nil, errors.New("ledger: the transaction kept changing under a result")
		}
		qr, err := l.store.Get(ctx, qrID)
		if err != nil {
			return nil, err
		}
		flags, err = l.settle(ctx, l.resultLog(n), qr, n, true)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			return nil, err
		}
		break
	}
	err := l.store.Delete(ctx, unmatched.ID, unmatched.Version)
	if errors.Is(err, store.ErrConflict) { // changed meanwhile: delete what is there
		if cur, gerr := l.store.Get(ctx, unmatched.ID); gerr == nil {
			err = l.store.Delete(ctx, cur.ID, cur.Version)
		}
	}
	if err != nil && !errors.Is(err, store.ErrRecordNotFound) {
		return flags, err
	}
	l.resultLog(n).Info("a result that came before its QR's ledger record is matched to it now",
		proxy.LogString("transaction_id", qrID), proxy.LogString("unmatched_id", unmatched.ID))
	return flags, nil
}
